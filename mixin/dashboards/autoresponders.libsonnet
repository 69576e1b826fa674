// "Pinpointe autoresponders": what is wrong now, volumes, open, click, bounce,
// unsubscribe and complaint rates. Every query selects account=~"$account" and, below
// the account-level panels, autoresponder_id=~"$autoresponder" (the variable's values
// are ids, its texts names: duplicate names stay apart, a rename keeps the selection).
local text = import '../lib/text.libsonnet';
local overview = import 'autoresponders_overview.libsonnet';
local panels = import 'panels.libsonnet';

{
  local ar = 'account, autoresponder_id, autoresponder_name',
  local sendLabels = 'account, autoresponder_id, autoresponder_name, send_id',
  local ar24 = 'account_autoresponder:pinpointe_autoresponder_',
  local sel = 'account=~"$account", autoresponder_id=~"$autoresponder"',
  local letter(i) = std.char(std.codepoint('A') + i),
  local indexed(list) = std.mapWithIndex(function(i, x) [i, x], list),

  // [display name, ratio stem of the recording rules, the alert watching it]
  local rateRules = [
    ['Open rate', 'unique_opens_per_recipients', 'PinpointeOpenRateDropped'],
    ['Click rate', 'unique_clicks_per_recipients', ''],
    ['Click-to-open rate', 'unique_clicks_per_unique_opens', ''],
    ['Bounce rate', 'bounces_per_recipients', 'PinpointeHighBounceRate'],
    ['Hard-bounce rate', 'hard_bounces_per_recipients', 'PinpointeHighHardBounceRate'],
    ['Unsubscribe rate', 'unsubscribes_per_recipients', 'PinpointeHighUnsubscribeRate'],
    ['Complaint rate', 'complaints_per_recipients', 'PinpointeHighComplaintRate'],
  ],

  dashboard(config, c)::
    // Growth of a cumulative gauge over the dashboard's range: a two-point difference per
    // autoresponder of the instance-free maximum, a fall counted as 0.
    local rangeVolume(metric) =
      local s = c.raw(metric, [sel]);
      text.sub('sum(clamp_min(max by (%s) (%s) - max by (%s) (%s offset $__range), 0))', [ar, s, ar, s]);
    local rangeRatio(metric) = text.sub('%s\n/\n(%s > 0)', [rangeVolume(metric), rangeVolume('pinpointe_autoresponder_recipients')]);
    local styledRates = [r for r in rateRules if std.objectHas(c.rateStyle, r[1])];
    local headline = [
      panels.stat(
        'Recipients',
        'Emails sent by the selected autoresponders in the selected time range (growth of Pinpointe\'s cumulative figures).',
        [panels.target(rangeVolume('pinpointe_autoresponder_recipients'), instant=true)],
        'short',
        4,
      ),
    ] + [
      panels.stat(h[0], h[1] + ' over the selected time range.', [panels.target(rangeRatio('pinpointe_autoresponder_' + h[2]), instant=true)], 'percentunit', 4, field=c.styled(h[3]))
      for h in [
        ['Open rate', 'Unique opens / recipients, both counted', 'unique_opens', ''],
        ['Click rate', 'Unique clicks / recipients', 'unique_clicks', ''],
        ['Bounce rate', 'Bounces of every kind / recipients', 'bounces', 'bounces_per_recipients'],
        ['Unsubscribe rate', 'Unsubscribes / recipients', 'unsubscribes', 'unsubscribes_per_recipients'],
        ['Complaint rate', 'Spam complaints (feedback loops) / recipients', 'complaints', 'complaints_per_recipients'],
      ]
    ];
    local overTime = [
      panels.timeseries(
        'Open and click rate, last 24 h',
        'Unique opens and unique clicks of the last 24 hours / recipients of the last 24 hours, per autoresponder (recording rules *:ratio_delta24h).',
        [
          panels.target(text.sub('%sunique_opens_per_recipients:ratio_delta24h{%s}', [ar24, sel]), 'open {{autoresponder_name}} ({{account}})', 'A'),
          panels.target(text.sub('%sunique_clicks_per_recipients:ratio_delta24h{%s}', [ar24, sel]), 'click {{autoresponder_name}} ({{account}})', 'B'),
        ],
        'percentunit',
        links=[c.runbook('PinpointeOpenRateDropped')],
      ),
    ] + [
      panels.timeseries(
        r[0] + ', last 24 h',
        text.sub('%s of the last 24 hours per autoresponder; the dashed line is where %s fires (it also needs a volume floor and a minimum of events).', [r[0], r[2]]),
        [panels.target(text.sub('%s%s:ratio_delta24h{%s}', [ar24, r[1], sel]), '{{autoresponder_name}} ({{account}})')],
        'percentunit',
        w=6,
        field=c.styled(r[1]),
        links=[c.runbook(r[2])],
      )
      for r in styledRates
    ] + [
      panels.timeseries(
        'Lifetime rates per account',
        "Cumulative (all-time) ratios per account, components summed over the account's autoresponders before dividing (recording rules account:*:ratio).",
        [
          panels.target(text.sub('account:pinpointe_autoresponder_%s:ratio{account=~"$account"}', [r[1][1]]), text.sub('%s {{account}}', [std.asciiLower(r[1][0])]), letter(r[0]))
          for r in indexed(rateRules)
        ],
        'percentunit',
      ),
      panels.timeseries(
        'Recipients, opens and clicks, last 24 h',
        'Emails sent, opens and clicks of the last 24 hours, summed over the selected autoresponders (recording rules *:delta24h).',
        [panels.target(text.sub('sum(%s%s:delta24h{%s})', [ar24, m[1], sel]), m[1], letter(m[0])) for m in indexed(['recipients', 'opens', 'clicks'])],
        'short',
      ),
    ];
    local autoresponderTable = panels.table(
      'Autoresponders',
      'One row per autoresponder: lifetime recipients, recipients of the last 24 hours and lifetime rates. Click a column header to sort.',
      [
        panels.tableTarget(text.sub('sum by (%s) (%s)', [ar, c.raw('pinpointe_autoresponder_recipients', [sel])]), 'A'),
        // sum by () drops __name__: the table's merge joins rows on their labels
        panels.tableTarget(text.sub('sum by (%s) (%srecipients:delta24h{%s})', [ar, ar24, sel]), 'B'),
      ] + [
        panels.tableTarget(text.sub('sum by (%s) (%s%s:ratio{%s})', [ar, ar24, r[1][1], sel]), letter(r[0] + 2))
        for r in indexed(rateRules)
      ],
      [['Value #A', 'Recipients', 'short', null], ['Value #B', 'Recipients 24 h', 'short', null]]
      + [
        ['Value #' + letter(r[0] + 2), r[1][0], 'percentunit', if std.objectHas(c.rateStyle, r[1][1]) then c.rateStyle[r[1][1]] else null]
        for r in indexed(rateRules)
      ],
      'Value #A',
      h=12,
    );
    local drillDown = [
      panels.timeseries(
        'Cumulative figures',
        "Pinpointe's cumulative figures for this autoresponder, as polled.",
        [
          panels.target(text.sub('max by (account) (%s)', [c.raw('pinpointe_autoresponder_' + m[1], [sel])]), text.sub('%s ({{account}})', [m[1]]), letter(m[0]))
          for m in indexed(['recipients', 'unique_opens', 'unique_clicks', 'unsubscribes', 'complaints'])
        ] + [
          panels.target(text.sub('sum by (account) (max by (account, bounce_type) (%s))', [c.raw('pinpointe_autoresponder_bounces', [sel])]), 'bounces ({{account}})', 'F'),
        ],
        'short',
        w=8,
      ),
      panels.timeseries(
        'Lifetime rates',
        'All-time ratios of this autoresponder (recording rules account_autoresponder:*:ratio).',
        [panels.target(text.sub('%s%s:ratio{%s}', [ar24, r[1][1], sel]), text.sub('%s ({{account}})', [std.asciiLower(r[1][0])]), letter(r[0])) for r in indexed(rateRules)],
        'percentunit',
        w=8,
      ),
      panels.timeseries(
        'Recipients, last 24 h',
        'Emails sent in the last 24 hours (recording rule *:recipients:delta24h; whole clock hours, so it lags up to an hour).',
        [panels.target(text.sub('%srecipients:delta24h{%s}', [ar24, sel]), '{{account}}')],
        'short',
        w=8,
      ),
    ];
    local sendRatio(numerator) =
      text.sub('sum by (%s) (%s)\n/\n(sum by (%s) (%s) > 0)', [
        sendLabels, c.raw('pinpointe_autoresponder_send_' + numerator, [sel]),
        sendLabels, c.raw('pinpointe_autoresponder_send_recipients', [sel]),
      ]);
    local perSend = [
      panels.table(
        'Sends',
        "One row per autoresponder send (needs `groupings: [send]` in the exporter's configuration; empty otherwise). Newest sends first.",
        [
          panels.tableTarget(text.sub('sum by (%s) (%s)', [sendLabels, c.raw('pinpointe_autoresponder_send_recipients', [sel])]), 'A'),
          panels.tableTarget(sendRatio('unique_opens'), 'B'),
          panels.tableTarget(sendRatio('unique_clicks'), 'C'),
          panels.tableTarget(sendRatio('bounces'), 'D'),
          panels.tableTarget(text.sub('max by (%s) (%s) * 1000', [sendLabels, c.raw('pinpointe_autoresponder_send_start_timestamp_seconds', [sel])]), 'E'),
        ],
        [
          ['Value #A', 'Recipients', 'short', null],
          ['Value #B', 'Open rate', 'percentunit', null],
          ['Value #C', 'Click rate', 'percentunit', null],
          ['Value #D', 'Bounce rate', 'percentunit', c.rateStyle.bounces_per_recipients],
          ['Value #E', 'Started', 'dateTimeAsIso', null],
        ],
        'Value #E',
        h=10,
      ),
      panels.timeseries(
        'Recipients per send',
        'Cumulative recipients of each send (needs `groupings: [send]`).',
        [panels.target(text.sub('sum by (%s) (%s)', [sendLabels, c.raw('pinpointe_autoresponder_send_recipients', [sel])]), '{{autoresponder_name}} send {{send_id}}')],
        'short',
        w=24,
      ),
    ];
    c.dashboard(
      config.dashboardUIDs.autoresponders,
      'Pinpointe autoresponders',
      'Engagement of Pinpointe autoresponders from pinpointe-exporter: what is wrong now, volumes, open, click, bounce, unsubscribe and complaint rates.',
      [
        c.datasourceVariable,
        c.queryVariable('account', 'Account', text.sub('label_values(%s, account)', [c.raw('pinpointe_up')])),
        c.queryVariable(
          'autoresponder',
          'Autoresponder',
          text.sub('query_result(max by (autoresponder_id, autoresponder_name) (%s))', [c.raw('pinpointe_autoresponder_recipients', ['account=~"$account"'])]),
          // query_result lines look like {autoresponder_id="7", autoresponder_name="Welcome"} 1 1700000000
          regex='/autoresponder_id="(?<value>[^"]*)".*autoresponder_name="(?<text>.*)"\\}/',
        ),
      ],
      [panels.row('Is everything OK?')] + overview.panels(config, c)
      + [panels.row('Selected time range')] + headline
      + [panels.row('Rates over time')] + overTime
      + [panels.row('Autoresponders'), autoresponderTable]
      + [
        panels.row('Autoresponder: ${autoresponder:text}', collapsed=true, repeat='autoresponder', panels=drillDown),
        panels.row('Per send', collapsed=true, panels=perSend),
      ],
      [c.linkTo('Pinpointe exporter', config.dashboardUIDs.exporter), c.runbooksLink],
    ),
}
