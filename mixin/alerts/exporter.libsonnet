// Alerts about the exporter and the polls of each account: is the monitoring itself
// working? Every rule selects the exporter's series with _config.pinpointeSelector.
local alert = import '../lib/alert.libsonnet';
local text = import '../lib/text.libsonnet';

{
  group(config)::
    local a = alert.with(config);
    local sel = config.pinpointeSelector;
    local threshold = text.threshold;
    local exporterDashboard(labels) = a.dashboard('exporter', labels);
    {
      name: 'pinpointe-exporter',
      rules: [
        a.rule(
          'PinpointeExporterDown',
          text.sub('up{%s} == 0', [sel]),
          'critical',
          summary='Pinpointe exporter {{ $labels.instance }} is down',
          description=|||
            Prometheus has not been able to scrape the Pinpointe exporter at
            {{ $labels.instance }} (job {{ $labels.job }}) for %(for)s, so none of the
            Pinpointe accounts it polls is monitored and no other Pinpointe alert can fire.
            Check that the exporter process or container is running and reachable from
            Prometheus (curl http://{{ $labels.instance }}/-/healthy) and read its log.
          |||,
          figure='scrapes of {{ $labels.instance }} failing (up = 0) for %(for)s',
          dashboard=exporterDashboard(['job']),
        ),
        // up == 0 needs an up series: this fires when there is none (target gone).
        a.rule(
          'PinpointeExporterTargetMissing',
          text.sub('absent(up{%s})', [sel]),
          'critical',
          summary='No Pinpointe exporter target is known to Prometheus',
          description=|||
            Prometheus has no scrape target matching %(selector)s at all (no up series) for
            %(for)s: the exporter was removed from service discovery, scaled to zero, or
            the job was renamed. No Pinpointe account is monitored and PinpointeExporterDown
            cannot fire. Check the scrape configuration or ServiceMonitor, the Service's
            endpoints (kubectl get endpoints) and the Deployment's replicas.
          |||,
          figure='no up series matching %(selector)s for %(for)s',
          dashboard=exporterDashboard([]),
        ),
        a.rule(
          'PinpointeExporterMetricsMissing',
          text.fill(|||
            absent(pinpointe_up{%(sel)s})
            and on ()
            count(up{%(sel)s} == 1) > 0
          |||, { sel: sel }),
          'critical',
          summary='The Pinpointe exporter serves no pinpointe_up series',
          description=|||
            Prometheus scrapes the targets matching %(selector)s but has found no
            pinpointe_up series for %(for)s: the target is not a pinpointe-exporter, the exporter has no account
            configured, or relabelling drops the series. No account is monitored. Check the
            scrape target's /metrics and the exporter's configuration (--config.check).
          |||,
          figure='targets up, but no pinpointe_up series for %(for)s',
          dashboard=exporterDashboard([]),
        ),
        // Fires fast: a rejected token never fixes itself. Resolves at the first
        // successful poll (pinpointe_up back to 1).
        a.rule(
          'PinpointeCredentialsRejected',
          text.fill(|||
            increase(pinpointe_poll_errors_total{%(sel)s, reason="auth"}[1h]) > 0
            and on (account, instance, job)
            pinpointe_up{%(sel)s} == 0
          |||, { sel: sel }),
          'critical',
          summary='Pinpointe rejected the credentials of account {{ $labels.account }}',
          description=|||
            Pinpointe answers "Unable to verify user credentials" (HTTP 401) to the exporter
            {{ $labels.instance }} for account {{ $labels.account }}: none of the account's
            autoresponders is being polled and retrying will not help. Check that the API is
            enabled for the account and that the configured username and usertoken match
            Account Settings => API + Connectors in Pinpointe; update the token in the
            exporter's configuration or secret. The alert resolves at the next successful poll.
          |||,
          figure='Pinpointe answers HTTP 401 to the polls of account {{ $labels.account }}',
          dashboard=exporterDashboard(['job', 'account']),
        ),
        // max by (job, account): a new pod (new instance label) does not restart `for`.
        a.rule(
          'PinpointeAccountPollsFailing',
          text.sub('max by (job, account) (pinpointe_up{%s}) == 0', [sel]),
          'warning',
          summary='Polls of Pinpointe account {{ $labels.account }} are failing',
          description=|||
            Every poll of Pinpointe account {{ $labels.account }} has failed for %(for)s;
            the account's autoresponder figures are not updated, and once stale_after has
            passed the exporter withdraws them, so the engagement alerts of the account go
            silent. See which reason grows in
            pinpointe_poll_errors_total{account="{{ $labels.account }}"} and read the exporter
            log, then fix the cause: api_url, network or TLS (connection, timeout), a
            Pinpointe outage (http, api_failed), rate limiting (rate_limited) or a response the
            exporter cannot parse (invalid_response, pagination: report it with the log line).
          |||,
          figure='every poll of account {{ $labels.account }} failed for %(for)s',
          dashboard=exporterDashboard(['job', 'account']),
        ),
        a.rule(
          'PinpointeDataStale',
          text.fill(|||
            time() - max by (job, account) (pinpointe_last_success_timestamp_seconds{%(sel)s})
            > %(stale)s * max by (job, account) (pinpointe_poll_interval_seconds{%(sel)s})
          |||, { sel: sel, stale: threshold('stale_poll_intervals') }),
          'warning',
          summary='Pinpointe figures of account {{ $labels.account }} are stale',
          description=|||
            The last successful poll of Pinpointe account {{ $labels.account }} was
            {{ $value | humanizeDuration }} ago, more than
            %(stale)s
            poll intervals. Until stale_after has passed, dashboards show old figures; after
            it, the exporter withdraws the account's engagement series, so its rate, stop and
            open-rate alerts go silent (they cannot fire without data) until polls succeed.
            If pinpointe_up{account="{{ $labels.account }}"} is 0, follow
            PinpointeAccountPollsFailing; if it is 1 the poller is stuck: restart the
            exporter and report a bug with its log.
          |||,
          figure='last successful poll {{ $value | humanizeDuration }} ago; the alert fires after %(stale)s poll intervals',
          dashboard=exporterDashboard(['job', 'account']),
          values={ stale: text.thresholdText('stale_poll_intervals') },
        ),
        a.rule(
          'PinpointePollSlow',
          text.fill(|||
            max by (job, account) (pinpointe_poll_duration_seconds{%(sel)s})
            > %(fraction)s
              * (
                  (
                    max by (job, account) (pinpointe_poll_interval_seconds{%(sel)s})
                    < max by (job, account) (pinpointe_poll_timeout_seconds{%(sel)s})
                  )
                  or max by (job, account) (pinpointe_poll_timeout_seconds{%(sel)s})
                  or max by (job, account) (pinpointe_poll_interval_seconds{%(sel)s})
                )
          |||, { sel: sel, fraction: threshold('poll_duration_interval_fraction') }),
          'warning',
          summary='Polls of Pinpointe account {{ $labels.account }} take most of the time they may take',
          description=|||
            A poll of Pinpointe account {{ $labels.account }} takes {{ $value | humanizeDuration }},
            more than %(fraction)s of its poll interval or of its
            poll_timeout, whichever is shorter: soon polls will run back to back, or be cut
            off by poll_timeout and fail with reason timeout.
            Check Pinpointe's response times (poll duration over time, timeout errors), then
            raise poll_interval (and poll_timeout), lower max_sends_per_autoresponder or limit
            the account to the autoresponders you need.
          |||,
          figure='a poll takes {{ $value | humanizeDuration }}, more than %(fraction)s of its poll interval or poll_timeout',
          dashboard=exporterDashboard(['job', 'account']),
          values={ fraction: text.thresholdText('poll_duration_interval_fraction', 'percent') },
        ),
        // These two are real counters: increase() is right here (per pod, then summed).
        a.rule(
          'PinpointeRateLimited',
          text.fill(|||
            sum by (job, account) (increase(pinpointe_poll_errors_total{%(sel)s, reason="rate_limited"}[1h])) > 0
            or
            sum by (job, account) (increase(pinpointe_api_requests_total{%(sel)s, code="429"}[1h]))
            >= %(limit)s
          |||, { sel: sel, limit: threshold('api_429_per_hour') }),
          'warning',
          summary='Pinpointe is rate-limiting the polls of account {{ $labels.account }}',
          description=|||
            Pinpointe answered {{ $value | printf "%%.0f" }} times in the last hour with rate
            limiting (HTTP 429 or a rate_limited poll failure) to the polls of account
            {{ $labels.account }}. The exporter backs off and honours Retry-After, so figures
            arrive later or not at all. Raise the account's poll_interval or page_size, and
            check that no other client uses the same API user.
          |||,
          figure='{{ $value | printf "%%.0f" }} rate-limited answers in the last hour (the alert fires from %(limit)s HTTP 429 or one rate_limited poll failure)',
          dashboard=exporterDashboard(['job', 'account']),
          values={ limit: text.thresholdText('api_429_per_hour') },
        ),
        // Named like Prometheus' own prometheus_config_last_reload_successful.
        a.rule(
          'PinpointeExporterConfigReloadFailed',
          text.sub('max by (job, instance) (pinpointe_exporter_config_last_reload_successful{%s}) == 0\n', [sel]),
          'warning',
          summary='Pinpointe exporter {{ $labels.instance }} failed to reload its configuration',
          description=|||
            The last configuration reload (SIGHUP or POST /-/reload) of the exporter
            {{ $labels.instance }} failed; it keeps running with the previous configuration, so
            the change you made is not in force, and the next restart will fail with it. Run
            pinpointe-exporter --config.check on the file, fix the key it names and reload.
          |||,
          figure='the last configuration reload of {{ $labels.instance }} failed (for %(for)s)',
          dashboard=exporterDashboard(['job']),
        ),
        // Sharded deployments only (--shard INDEX/COUNT): distinct shard indexes per job
        // (and namespace), instance and pod aggregated away, against the configured count.
        // A duplicated index (two pods with the same --shard) counts once and fires too.
        a.rule(
          'PinpointeExporterShardMissing',
          text.fill(|||
            count by (job, namespace) (
              count_values by (job, namespace) ("shard", pinpointe_exporter_shard_index{%(sel)s})
            )
            < max by (job, namespace) (pinpointe_exporter_shard_count{%(sel)s})
          |||, { sel: sel }),
          'critical',
          summary='Only some shards of the Pinpointe exporter job {{ $labels.job }} report',
          description=|||
            Only {{ $value }} distinct shards of job {{ $labels.job }} report
            pinpointe_exporter_shard_index, fewer than the configured --shard count: the
            accounts of the missing shards are not polled (each account belongs to exactly one
            shard). Check the StatefulSet's pods (kubectl get pods), which shard index each one
            got, and the missing pod's log.
          |||,
          figure='{{ $value }} distinct shards report, fewer than the configured --shard count',
          dashboard=exporterDashboard(['job']),
        ),
      ],
    },
}
