// Every tunable of the pinpointe-exporter mixin. Override what you need:
//   (import 'mixin/mixin.libsonnet') + { _config+:: { pinpointeSelector: 'job="email"' } }
// Rates are ratios 0-1 (0.001 = 0.1 %), volumes are emails of the last 24 hours.
{
  _config+:: {
    // Label matchers that select the exporter's own series (and its `up`), in every
    // rule, alert, dashboard query and dashboard variable. With the Prometheus
    // Operator the job is the Service's name unless the ServiceMonitor's jobLabel or a
    // relabeling says otherwise.
    pinpointeSelector: 'job="pinpointe"',

    // Every alert's runbook_url is this followed by #<alert name in lower case>.
    runbookURLBase: 'https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md',
    // Grafana as the people who get the notifications reach it: every alert's
    // dashboard_url opens the dashboard of its figure, its account and autoresponder
    // selected.
    grafanaURL: 'http://localhost:3000',

    // Account complaint rate (all autoresponders of the account over the last 24 h),
    // the mailbox providers' tiers: stay under 0.1 %, never reach 0.3 %.
    complaintRateWarning: 0.001,  // PinpointeAccountComplaintRateHigh
    complaintRateCritical: 0.003,  // PinpointeAccountComplaintRateCritical
    accountComplaintMinRecipients24h: 300,  // both: the account sent at least this many
    accountComplaintMinComplaints24h: 3,  // both: and got at least this many complaints

    // The four per-autoresponder rate alerts: the rate of the last 24 h above the
    // threshold, with at least a floor of recipients and of events (one complaint in
    // 500 mails is 0.2 % but no trend).
    bounceRate: 0.05,  // PinpointeHighBounceRate
    bounceMinRecipients24h: 200,
    bounceMinBounces24h: 10,
    hardBounceRate: 0.02,  // PinpointeHighHardBounceRate
    hardBounceMinRecipients24h: 200,
    hardBounceMinHardBounces24h: 5,
    complaintRate: 0.001,  // PinpointeHighComplaintRate
    complaintMinRecipients24h: 500,
    complaintMinComplaints24h: 3,
    unsubscribeRate: 0.01,  // PinpointeHighUnsubscribeRate
    unsubscribeMinRecipients24h: 200,
    unsubscribeMinUnsubscribes24h: 5,
    // Hysteresis: a rate alert resolves only below this fraction of its threshold.
    rateResolveFactor: 0.8,
    // The rate alerts stay silent while the last 24 h's recipients are more than this
    // factor below the same 24 h a week earlier; PinpointeOpenRateDropped while they
    // are more than this factor above or below.
    volumeSwingFactor: 2,

    // PinpointeAutoresponderStoppedSending: the same 24 h a week earlier had at least
    // this many recipients.
    stoppedSendingMinRecipientsWeekAgo: 20,
    // PinpointeOpenRateDropped: the open rate below this fraction of a week earlier,
    // with at least this many recipients in both windows.
    openRateDropFactor: 0.5,
    openRateMinRecipients24h: 200,

    // Exporter health.
    staleAfterPollIntervals: 3,  // PinpointeDataStale; dashboards colour red from here
    freshnessWarningPollIntervals: 1.5,  // dashboards colour orange from here
    recordsDropFactor: 0.5,  // PinpointeRecordsDropped: below this fraction of an hour earlier
    rateLimited429PerHour: 3,  // PinpointeRateLimited: HTTP 429 answers in an hour
    slowPollFraction: 0.8,  // PinpointePollSlow: of the poll interval or poll_timeout

    // How often the growth of the last whole clock hour of each figure is recorded (the
    // :delta1h series the 24 h volumes are summed from). Any interval up to 1h gives
    // the same volumes; a shorter one recovers sooner from an evaluation Prometheus
    // missed (a restart at that moment), at a small cost.
    hourlyIncreasesInterval: '20m',
    // How often the groups run whose figures move over hours, not minutes: the lifetime
    // ratios, the 24 h volumes, the alerts on them and the exporter's data-shape alerts
    // (records, fields, values). It must stay below Prometheus' lookback delta (5m by
    // default), so that every series they record and every ALERTS series the latching
    // alerts read back is always within reach. The exporter-health alerts run at the
    // global evaluation_interval.
    slowRulesInterval: '4m',

    // How long a condition must hold before the alert fires.
    alertFor: {
      PinpointeExporterDown: '5m',
      PinpointeExporterTargetMissing: '10m',
      PinpointeExporterMetricsMissing: '10m',
      PinpointeExporterShardMissing: '10m',
      PinpointeExporterConfigReloadFailed: '5m',
      PinpointeCredentialsRejected: '1m',
      PinpointeAccountPollsFailing: '15m',
      PinpointeDataStale: '5m',
      PinpointePollSlow: '30m',
      PinpointeRateLimited: '10m',
      PinpointeRecordsDropped: '15m',
      PinpointeFieldMissing: '15m',
      PinpointeSkippedValues: '15m',
      PinpointeUnmappedFieldAppeared: '10m',
      PinpointeHighBounceRate: '30m',
      PinpointeHighHardBounceRate: '30m',
      PinpointeHighComplaintRate: '30m',
      PinpointeHighUnsubscribeRate: '30m',
      PinpointeAutoresponderStoppedSending: '30m',
      PinpointeOpenRateDropped: '1h',
      PinpointeAccountComplaintRateHigh: '30m',
      PinpointeAccountComplaintRateCritical: '30m',
    },
    // How long an alert keeps firing once its condition is gone (Prometheus 2.42+):
    // across an exporter outage, a poll gap or a pod replacement.
    alertKeepFiringFor: {
      PinpointeRecordsDropped: '15m',
      PinpointeFieldMissing: '15m',
      PinpointeHighBounceRate: '2h',
      PinpointeHighHardBounceRate: '2h',
      PinpointeHighComplaintRate: '2h',
      PinpointeHighUnsubscribeRate: '2h',
      PinpointeAutoresponderStoppedSending: '1h',
      PinpointeOpenRateDropped: '2h',
      PinpointeAccountComplaintRateHigh: '2h',
      PinpointeAccountComplaintRateCritical: '2h',
    },

    // Grafana.
    dashboardUIDs: {
      autoresponders: 'pinpointe-autoresponders',
      exporter: 'pinpointe-exporter',
    },
    dashboardTags: ['pinpointe', 'email'],
    dashboardTimezone: 'browser',
    dashboardRefresh: '1m',
    // The folder the Compose provisioning and the Kubernetes ConfigMaps put the
    // dashboards in.
    grafanaFolder: 'Pinpointe',
  },
}
