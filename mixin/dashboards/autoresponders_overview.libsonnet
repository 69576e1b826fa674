// The first screen of the autoresponders dashboard: is everything OK, and which
// autoresponder is in trouble?
local text = import '../lib/text.libsonnet';
local panels = import 'panels.libsonnet';

{
  local ar = 'account, autoresponder_id, autoresponder_name',
  local ar24 = 'account_autoresponder:pinpointe_autoresponder_',
  local sel = 'account=~"$account", autoresponder_id=~"$autoresponder"',
  local acc = 'account=~"$account"',
  local letter(i) = std.char(std.codepoint('A') + i),
  local severityMappings = [{ type: 'value', options: {
    critical: { text: 'critical', color: 'red', index: 0 },
    warning: { text: 'warning', color: 'orange', index: 1 },
  } }],

  // [display name, ratio stem of the recording rules, the alert watching it]
  offenderRates:: [
    ['Bounce rate', 'bounces_per_recipients', 'PinpointeHighBounceRate'],
    ['Hard-bounce rate', 'hard_bounces_per_recipients', 'PinpointeHighHardBounceRate'],
    ['Unsubscribe rate', 'unsubscribes_per_recipients', 'PinpointeHighUnsubscribeRate'],
    ['Complaint rate', 'complaints_per_recipients', 'PinpointeHighComplaintRate'],
  ],

  panels(config, c)::
    local firing = 'ALERTS{alertstate="firing", alertname=~"Pinpointe.+"';
    // the smallest recipients floor of the per-autoresponder rate alerts
    local floor = '%g' % std.min(std.min(config.bounceMinRecipients24h, config.hardBounceMinRecipients24h), std.min(config.complaintMinRecipients24h, config.unsubscribeMinRecipients24h));
    local rates = $.offenderRates;
    [
      panels.table(
        'Firing alerts',
        "Pinpointe alerts firing now, from Prometheus' ALERTS series (exporter-wide ones have no account). '(none firing)' per account when all is well. Runbooks: the dashboard link above.",
        [panels.tableTarget(text.sub('%s, %s}\nor\n%s, account=""}\n%s', [firing, acc, firing, c.placeholderRow('alertname', '(none firing)')]), 'A')],
        [['severity', 'Severity', 'none', null]],
        'severity',
        w=10,
        h=8,
        hide=['Time', 'Value', '__name__', 'alertstate', 'instance', 'job'],
        descending=false,
        links=[c.runbooksPanelLink],
        overrides=[{
          matcher: { id: 'byName', options: 'severity' },
          properties: [
            { id: 'mappings', value: severityMappings },
            { id: 'custom.cellOptions', value: { type: 'color-background' } },
          ],
        }],
      ),
      panels.stat(
        'Data freshness',
        'Poll intervals since the last successful poll of each account: orange from %g, red from %g where PinpointeDataStale fires.' % [config.freshnessWarningPollIntervals, config.staleAfterPollIntervals],
        [panels.target(
          text.sub('(time() - max by (account) (%s))\n/\nmax by (account) (%s)', [
            c.raw('pinpointe_last_success_timestamp_seconds', [acc]),
            c.raw('pinpointe_poll_interval_seconds', [acc]),
          ]),
          '{{account}}',
          instant=true,
        )],
        'none',
        5,
        8,
        textMode='value_and_name',
        colorMode='background',
        field={ thresholds: c.stale, decimals: 1 },
        links=[c.runbook('PinpointeDataStale')],
      ),
      panels.timeseries(
        'Account complaint rate, last 24 h',
        text.sub("Spam complaints / recipients of each account's last 24 hours, all autoresponders together, as mailbox providers judge it. Lines at the providers' tiers: %s (PinpointeAccountComplaintRateHigh) and %s (PinpointeAccountComplaintRateCritical).", [
          '%.1f%%' % (config.complaintRateWarning * 100),
          '%.1f%%' % (config.complaintRateCritical * 100),
        ]),
        [panels.target(text.sub('account:pinpointe_autoresponder_complaints_per_recipients:ratio_delta24h{%s}', [acc]), '{{account}}')],
        'percentunit',
        w=9,
        h=8,
        field=c.styled('complaints_per_recipients'),
        links=[c.runbook('PinpointeAccountComplaintRateHigh')],
      ),
      panels.table(
        'Top offenders, last 24 h',
        text.sub("Bounce, hard-bounce, unsubscribe and complaint rates of the last 24 hours per autoresponder that sent at least %s (the alerts' volume floor), sorted by complaint rate; cells coloured at the alert thresholds.", [floor]),
        [panels.tableTarget(text.sub('sum by (%s) (%srecipients:delta24h{%s}) >= %s', [ar, ar24, sel, floor]), 'A')]
        + [
          panels.tableTarget(
            text.sub('sum by (%s) (%s%s:ratio_delta24h{%s})\nand on (%s)\n%srecipients:delta24h{%s} >= %s', [ar, ar24, rates[i][1], sel, ar, ar24, sel, floor]),
            letter(i + 1),
          )
          for i in std.range(0, std.length(rates) - 1)
        ],
        [['Value #A', 'Recipients 24 h', 'short', null]]
        + [['Value #' + letter(i + 1), rates[i][0], 'percentunit', c.rateStyle[rates[i][1]]] for i in std.range(0, std.length(rates) - 1)],
        'Value #' + letter(std.length(rates)),
        w=24,
        h=9,
        links=[c.runbook(r[2]) for r in rates],
      ),
      panels.stateTimeline(
        'Recipients of the last 24 h, per autoresponder',
        'Emails sent in the last 24 hours by each autoresponder (recording rule *:recipients:delta24h). Red: none; a stop shows as a red band. Compare with the same weekday a week earlier before worrying: PinpointeAutoresponderStoppedSending does.',
        [panels.target(text.sub('%srecipients:delta24h{%s}', [ar24, sel]), '{{autoresponder_name}}')],
        24,
        8,
        field={
          color: { mode: 'thresholds' },
          thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] },
        },
        showValue='auto',
        links=[c.runbook('PinpointeAutoresponderStoppedSending')],
      ),
    ],
}
