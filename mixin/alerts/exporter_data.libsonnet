// The exporter alerts about what the polls deliver (records, fields, values): figures
// that move over hours, in a group of their own at _config.slowRulesInterval.
local alert = import '../lib/alert.libsonnet';
local text = import '../lib/text.libsonnet';

{
  group(config)::
    local a = alert.with(config);
    local sel = config.pinpointeSelector;
    local exporterDashboard(labels) = a.dashboard('exporter', labels);
    {
      name: 'pinpointe-exporter-data',
      interval: config.slowRulesInterval,
      rules: [
      // The autoresponder series of each figure (metric, bounce type) of an account:
      // PinpointeFieldMissing compares it with an hour earlier, reading all of them
      // once per evaluation instead of twice.
      {
        record: 'account:pinpointe_autoresponder_series:count',
        expr: text.fill(|||
          label_replace(
            count by (job, account, __name__, bounce_type) ({__name__=~"pinpointe_autoresponder_.+", %(sel)s}),
            "metric", "$1", "__name__", "(.+)"
          )
        |||, { sel: sel }),
      },
      // Latched: once firing, it keeps firing while the records have not grown
      // (compared with an hour earlier) and the account is still polled, so a
      // permanent drop does not "resolve" an hour later, when the hour-ago figure
      // is the dropped one too. keep_firing_for bridges a pod replacement (no
      // pinpointe_up for a scrape or two), which would otherwise drop the latch.
      a.rule(
        'PinpointeRecordsDropped',
        text.fill(|||
          (
              max by (job, account, grouping) (pinpointe_records{%(sel)s})
            < %(factor)s * max by (job, account, grouping) (pinpointe_records{%(sel)s} offset 1h)
            and on (job, account)
            max by (job, account) (pinpointe_up{%(sel)s}) == 1
          )
          or
          (
              max by (job, account, grouping) (pinpointe_records{%(sel)s})
            <= max by (job, account, grouping) (pinpointe_records{%(sel)s} offset 1h)
            and on (job, account, grouping)
            ALERTS{alertname="PinpointeRecordsDropped", alertstate="firing"}
            and on (job, account)
            max by (job, account) (pinpointe_up{%(sel)s})
          )
        |||, { sel: sel, factor: text.threshold('records_drop_factor') }),
        'warning',
        summary='Records of Pinpointe account {{ $labels.account }} fell sharply',
        description=|||
          The account {{ $labels.account }} has {{ $value }} {{ $labels.grouping }} records in
          its last successful poll: they fell below %(factor)s of the figure an hour
          earlier while polls succeeded, and have not grown since. Check in Pinpointe whether
          autoresponders were deleted or deactivated, whether the configured autoresponders
          filter still matches, and the exporter's log for pagination warnings. The alert
          keeps firing until the records grow again; if they were deleted on purpose,
          silence it.
        |||,
        figure='{{ $value }} {{ $labels.grouping }} records, below %(factor)s of an hour earlier, and not growing since',
        dashboard=exporterDashboard(['job', 'account']),
        values={ factor: text.thresholdText('records_drop_factor', 'percent') },
      ),
      // A figure present an hour ago and gone now while polls succeed. Latched: once
      // firing, it keeps firing while the figure is still missing and the account is
      // still configured (it has a pinpointe_up, whatever its value), so a renamed field
      // does not "resolve" an hour later, when the hour-ago figure is missing too.
      // keep_firing_for bridges a pod replacement, as for PinpointeRecordsDropped.
      a.rule(
        'PinpointeFieldMissing',
        text.fill(|||
          max by (job, account, metric, bounce_type) (
              (
                account:pinpointe_autoresponder_series:count offset 1h
                and on (job, account)
                max by (job, account) (pinpointe_up{%(sel)s}) == 1
              )
            or
              (
                ALERTS{alertname="PinpointeFieldMissing", alertstate="firing"}
                and on (job, account)
                max by (job, account) (pinpointe_up{%(sel)s})
              )
          )
          unless on (job, account, metric, bounce_type)
          account:pinpointe_autoresponder_series:count
        |||, { sel: sel }),
        'warning',
        summary='Pinpointe account {{ $labels.account }} stopped sending {{ $labels.metric }}',
        description=|||
          Autoresponder series of {{ $labels.metric }}{{ with $labels.bounce_type }} (bounce_type {{ . }}){{ end }}
          came from Pinpointe account {{ $labels.account }} and stopped arriving while polls
          succeeded: now there are none. Pinpointe probably renamed or dropped the API field:
          every alert built on this figure (e.g. complaints) can no longer fire. Check the
          account's unmapped fields (pinpointe_unmapped_field_info, the exporter's status
          page) and map the new field name in the account's field_map. The alert keeps firing
          until the figure is back or the account is removed from the configuration.
        |||,
        figure='{{ $labels.metric }}{{ with $labels.bounce_type }} (bounce_type {{ . }}){{ end }}: present an hour ago, now missing from every autoresponder',
        dashboard=exporterDashboard(['job', 'account']),
      ),
      a.rule(
        'PinpointeSkippedValues',
        text.fill(|||
          max by (job, account, grouping) (pinpointe_skipped_values{%(sel)s})
          >
          (
            max by (job, account, grouping) (pinpointe_skipped_values{%(sel)s} offset 1h)
            or
            0 * max by (job, account, grouping) (pinpointe_skipped_values{%(sel)s})
          )
        |||, { sel: sel }),
        'warning',
        summary='The exporter skips more values of Pinpointe account {{ $labels.account }}',
        description=|||
          The last poll of account {{ $labels.account }} ({{ $labels.grouping }} records) had
          {{ $value }} values that were not non-negative numbers and were skipped, more than
          an hour earlier: the affected figures are missing from the metrics. Check the
          exporter's log (it names the fields) and report the response shape.
        |||,
        figure='{{ $value }} skipped values in the last poll, more than an hour earlier',
        dashboard=exporterDashboard(['job', 'account']),
      ),
      // A field that was not there a day ago (while polls succeeded then).
      a.rule(
        'PinpointeUnmappedFieldAppeared',
        text.fill(|||
          max by (job, account, field) (pinpointe_unmapped_field_info{%(sel)s})
          unless on (job, account, field)
          max by (job, account, field) (pinpointe_unmapped_field_info{%(sel)s} offset 1d)
          and on (job, account)
          max by (job, account) (pinpointe_up{%(sel)s} offset 1d) == 1
        |||, { sel: sel }),
        'warning',
        summary='Pinpointe account {{ $labels.account }} sends a new field {{ $labels.field }}',
        description=|||
          Pinpointe started sending a numeric field "{{ $labels.field }}" for account
          {{ $labels.account }} in the last day that no metric carries. If a known figure
          disappeared at the same time (PinpointeFieldMissing), Pinpointe renamed it: map
          the new name in the account's field_map. Otherwise review whether it is worth
          mapping. The alert resolves after a day.
        |||,
        figure='new unmapped field {{ $labels.field }}, not there a day ago',
        dashboard=exporterDashboard(['job', 'account']),
      ),
    ],
    },
}
