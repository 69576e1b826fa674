// Mailbox providers judge the sending account, not the autoresponder: ten small
// autoresponders with one complaint each can put the account over the line while no
// per-autoresponder alert may fire. Tiers as Gmail and Yahoo publish them: stay under
// 0.1 %, never reach 0.3 %. The critical one is as severe as an exporter outage.
local alert = import '../lib/alert.libsonnet';
local text = import '../lib/text.libsonnet';

{
  local tier(a, config, name, severity, threshold, configKey, what, providers) =
    a.rule(
      name,
      text.fill(|||
        account:pinpointe_autoresponder_complaints_per_recipients:ratio_delta24h
        > %(rate)s
        and on (account)
        account:pinpointe_autoresponder_complaints:delta24h >= %(minComplaints)s
        and on (account)
        account:pinpointe_autoresponder_recipients:delta24h >= %(minRecipients)s
      |||, {
        rate: text.threshold(threshold),
        minComplaints: text.threshold('account_min_complaints_24h'),
        minRecipients: text.threshold('account_min_recipients_24h'),
      }),
      severity,
      summary=text.sub('Spam-complaint rate of Pinpointe account {{ $labels.account }} above %s', [std.strReplace(text.percent(config[configKey]), '%', '%%')]),
      description=|||
        {{ $value | humanizePercentage }} of all emails sent by Pinpointe account
        {{ $labels.account }} in the last 24 hours were reported as spam, above
        %(rate)s (%(what)s). Providers
        judge the whole sending account: deliverability of every autoresponder is at
        risk. Find the autoresponders with the most complaints (dashboard "Top offenders"),
        pause the worst, and check opt-in sources and sender recognisability.
      |||,
      figure='account complaint rate {{ $value | humanizePercentage }} over the last 24 h, above %(rate)s; %(providers)s',
      dashboard=a.dashboard('autoresponders', ['account']),
      values={ rate: text.thresholdText(threshold, 'percent'), what: what, providers: providers },
    ),

  group(config)::
    local a = alert.with(config);
    {
      name: 'pinpointe-account',
      interval: config.slowRulesInterval,
      rules: [
        tier(
          a, config, 'PinpointeAccountComplaintRateHigh', 'warning',
          'account_complaint_rate_warning', 'complaintRateWarning', 'the warning threshold',
          'mailbox providers ask senders to stay under 0.1% and start filtering at 0.3%',
        ),
        tier(
          a, config, 'PinpointeAccountComplaintRateCritical', 'critical',
          'account_complaint_rate_critical', 'complaintRateCritical', 'the critical threshold',
          'mailbox providers start filtering at 0.3%',
        ),
      ],
    },
}
