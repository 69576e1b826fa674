// The volumes of the last 24 hours (recipients, opens, bounces, ...) and their ratios.
//
// The exporter's engagement series are gauges of cumulative figures that usually grow
// but also fall without resetting (a deleted send, a bounce reclassified). A figure's
// 24 h volume is the sum of its growth in each of the 24 whole clock hours before the
// last one that ended, where an hour whose figure fell, or lacks a sample at either end,
// is unknown and adds nothing (neither a negative volume nor a fake burst after a gap).
//
// The growth of a clock hour never changes once the hour is over, so it is recorded
// (`:delta1h`, by a group that need not run every minute) and summed from the recorded
// series: an evaluation reads the recorded hours and three raw samples per series, not
// a day of raw samples. The last hour is always computed from the raw figures, so
// the result does not depend on when in the hour the recording group happens to run.
local promql = import '../lib/promql.libsonnet';
local text = import '../lib/text.libsonnet';

{
  local ar = promql.autoresponder,

  // [volume, the growth of one hour (PromQL), the series that must exist now]
  volumes(sel)::
    local simple(v) =
      local metric = 'pinpointe_autoresponder_' + v;
      [v, text.sub('  %s\n- %s', [promql.figure(metric, sel), promql.figure(metric, sel, '', '1h')]), promql.figure(metric, sel)];
    [
      simple('recipients'),
      simple('opens'),
      simple('unique_opens'),
      simple('clicks'),
      simple('unique_clicks'),
      simple('unsubscribes'),
      simple('complaints'),
      // all bounce types, summed before the difference: a reclassified bounce is no new one
      [
        'bounces',
        text.sub('  %s\n- %s', [promql.bounceTypes(sel), promql.bounceTypes(sel, '', '1h')]),
        promql.figure('pinpointe_autoresponder_bounces', sel),
      ],
      // hard bounces; an hour's fall of the other types (a reclassification to hard) is
      // taken off that hour's hard growth
      [
        'hard_bounces',
        text.fill(|||
          (
              %(hard)s
            - %(hardBefore)s
          )
          +
          (
            clamp_max(%(others)s - %(othersBefore)s, 0)
            or
            0 * %(hard)s
          )
        |||, {
          hard: promql.figure('pinpointe_autoresponder_bounces', sel, 'bounce_type="hard"'),
          hardBefore: promql.figure('pinpointe_autoresponder_bounces', sel, 'bounce_type="hard"', '1h'),
          others: promql.bounceTypes(sel, 'bounce_type!="hard"'),
          othersBefore: promql.bounceTypes(sel, 'bounce_type!="hard"', '1h'),
        }),
        promql.figure('pinpointe_autoresponder_bounces', sel, 'bounce_type="hard"'),
      ],
    ],

  local indent(block, spaces) =
    std.join('\n', [if line == '' then '' else std.repeat(' ', spaces) + line for line in std.split(std.rstripChars(block, '\n'), '\n')]),

  // The growth in the last whole clock hour before now (one subquery point: at the hour
  // itself, the hour before).
  lastHour(growthExpr)::
    text.sub('last_over_time((\n%s\n  >= 0\n)[1h:1h] offset 1ms)', [indent(growthExpr, 4)]),

  hourlyGroup(config):: {
    name: 'pinpointe-autoresponder-hourly',
    interval: config.hourlyIncreasesInterval,
    rules: [
      {
        record: text.sub('account_autoresponder:pinpointe_autoresponder_%s:delta1h', [v[0]]),
        expr: $.lastHour(v[1]),
      }
      for v in $.volumes(config.pinpointeSelector)
    ],
  },

  // Each recorded sample of :delta1h holds the hour that ended last before it was
  // recorded; at every whole hour of the 23 before the last one, max_over_time takes
  // that hour's recorded growth (however often it was recorded).
  volume24h(v)::
    text.fill(|||
      sum by (%(ar)s) (
          label_replace(
            sum_over_time(max_over_time(account_autoresponder:pinpointe_autoresponder_%(name)s:delta1h[59m59s999ms])[23h:1h] offset 1ms),
            "hours", "23 before", "", ""
          )
        or
          label_replace(
      %(last)s,
            "hours", "last", "", ""
          )
      )
      and
      %(now)s
    |||, { ar: ar, name: v[0], last: indent($.lastHour(v[1]), 6), now: v[2] }),

  group(config)::
    local sel = config.pinpointeSelector;
    local volumes = $.volumes(sel);
    local record(level, name, op) = text.sub('%s:pinpointe_autoresponder_%s:%s', [level, name, op]);
    local ratio(level, numerator, denominator) = {
      record: record(level, text.sub('%s_per_%s', [numerator, denominator]), 'ratio_delta24h'),
      expr: promql.ratio(record(level, numerator, 'delta24h'), record(level, denominator, 'delta24h')),
    };
    {
      name: 'pinpointe-autoresponder-24h',
      interval: config.slowRulesInterval,
      rules:
        [{ record: record('account_autoresponder', v[0], 'delta24h'), expr: $.volume24h(v) } for v in volumes]
        + [
          // the same 24 h a week earlier (the volume-swing guard of the alerts)
          {
            record: record('account_autoresponder', 'recipients', 'delta24h_offset7d'),
            expr: text.sub('%s offset 7d\nand\n%s', [record('account_autoresponder', 'recipients', 'delta24h'), volumes[0][2]]),
          },
        ]
        + [
          {
            record: record('account', v, 'delta24h'),
            expr: text.sub('sum by (account) (%s)', [record('account_autoresponder', v, 'delta24h')]),
          }
          for v in ['recipients', 'opens', 'unique_opens', 'clicks', 'unsubscribes', 'complaints', 'bounces', 'hard_bounces']
        ]
        + [
          ratio('account_autoresponder', n, 'recipients')
          for n in ['unique_opens', 'unique_clicks', 'bounces', 'hard_bounces', 'unsubscribes', 'complaints']
        ]
        + [
          ratio('account', n, 'recipients')
          for n in ['unique_opens', 'bounces', 'hard_bounces', 'unsubscribes', 'complaints']
        ]
        + [
          // last 24 h's recipients / the same 24 h a week earlier (no value when the
          // week-ago volume is 0 or unknown)
          {
            record: record('account_autoresponder', 'recipients_per_recipients_a_week_earlier', 'ratio_delta24h'),
            expr: promql.ratio(record('account_autoresponder', 'recipients', 'delta24h'), record('account_autoresponder', 'recipients', 'delta24h_offset7d')),
          },
        ],
    },
}
