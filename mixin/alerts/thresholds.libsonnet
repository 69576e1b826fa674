// The thresholds as constant series pinpointe:alert_threshold{threshold="<name>"}: the
// alert expressions read them with scalar(), the annotations print them with `query`.
// In the rendered alerts.yml they are the one place to change a number by hand.
local text = import '../lib/text.libsonnet';

{
  // [series name, _config key, what it is for]
  table:: [
    ['bounce_rate', 'bounceRate', "PinpointeHighBounceRate: bounces / the last 24 h's recipients"],
    ['bounce_min_recipients_24h', 'bounceMinRecipients24h', 'PinpointeHighBounceRate: recipients floor'],
    ['bounce_min_events_24h', 'bounceMinBounces24h', 'PinpointeHighBounceRate: bounces floor'],
    ['hard_bounce_rate', 'hardBounceRate', 'PinpointeHighHardBounceRate'],
    ['hard_bounce_min_recipients_24h', 'hardBounceMinRecipients24h', 'PinpointeHighHardBounceRate: recipients floor'],
    ['hard_bounce_min_events_24h', 'hardBounceMinHardBounces24h', 'PinpointeHighHardBounceRate: hard bounces floor'],
    ['complaint_rate', 'complaintRate', "PinpointeHighComplaintRate (Gmail/Yahoo's sender guideline)"],
    ['complaint_min_recipients_24h', 'complaintMinRecipients24h', 'PinpointeHighComplaintRate: recipients floor'],
    ['complaint_min_events_24h', 'complaintMinComplaints24h', 'PinpointeHighComplaintRate: complaints floor (one complaint is no trend)'],
    ['unsubscribe_rate', 'unsubscribeRate', 'PinpointeHighUnsubscribeRate'],
    ['unsubscribe_min_recipients_24h', 'unsubscribeMinRecipients24h', 'PinpointeHighUnsubscribeRate: recipients floor'],
    ['unsubscribe_min_events_24h', 'unsubscribeMinUnsubscribes24h', 'PinpointeHighUnsubscribeRate: unsubscribes floor'],
    ['resolve_factor', 'rateResolveFactor', 'the four rate alerts resolve only below this fraction of their threshold'],
    ['volume_swing_factor', 'volumeSwingFactor', 'the rate alerts are silent while the volume is this factor below a week earlier; PinpointeOpenRateDropped while above or below'],
    ['account_complaint_rate_warning', 'complaintRateWarning', "PinpointeAccountComplaintRateHigh (providers' guideline)"],
    ['account_complaint_rate_critical', 'complaintRateCritical', "PinpointeAccountComplaintRateCritical (providers' hard limit)"],
    ['account_min_recipients_24h', 'accountComplaintMinRecipients24h', 'both account complaint alerts: recipients floor of the account'],
    ['account_min_complaints_24h', 'accountComplaintMinComplaints24h', 'both account complaint alerts: complaints floor of the account'],
    ['stopped_sending_min_recipients_week_ago', 'stoppedSendingMinRecipientsWeekAgo', 'PinpointeAutoresponderStoppedSending: recipients of the same 24 h a week earlier'],
    ['open_rate_drop_factor', 'openRateDropFactor', "PinpointeOpenRateDropped: today's open rate below this fraction of a week earlier"],
    ['open_rate_min_recipients_24h', 'openRateMinRecipients24h', 'PinpointeOpenRateDropped: recipients floor in both windows'],
    ['stale_poll_intervals', 'staleAfterPollIntervals', 'PinpointeDataStale: poll intervals without a successful poll'],
    ['records_drop_factor', 'recordsDropFactor', 'PinpointeRecordsDropped: records below this fraction of an hour earlier'],
    ['api_429_per_hour', 'rateLimited429PerHour', 'PinpointeRateLimited: HTTP 429 answers in an hour'],
    ['poll_duration_interval_fraction', 'slowPollFraction', 'PinpointePollSlow: of the poll interval or poll_timeout, whichever is shorter'],
  ],

  group(config):: {
    name: 'pinpointe-alert-thresholds',
    rules: [
      {
        record: 'pinpointe:alert_threshold',
        labels: { threshold: row[0] },
        expr: text.sub('vector(%s)', [text.num(config[row[1]])]),
      }
      for row in $.table
    ],
  },
}
