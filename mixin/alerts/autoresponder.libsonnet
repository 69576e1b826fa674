// Alerts about one autoresponder's mail of the last 24 hours. They read the recording
// rules of rules/volumes.libsonnet (load both files).
local alert = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';
local text = import '../lib/text.libsonnet';

{
  local ar = promql.autoresponder,
  local rule = 'account_autoresponder:pinpointe_autoresponder_',
  local threshold = text.threshold,

  // The four rate alerts share one shape:
  //  * the 24 h ratio above the threshold, or above resolve_factor x threshold while
  //    already firing (hysteresis: a rate hovering at the line does not fire and
  //    resolve over and over);
  //  * at least a floor of recipients AND of events (one complaint in 500 mails is
  //    0.2 % but no trend);
  //  * not while the volume FELL more than volume_swing_factor against the same 24 h a
  //    week earlier: bounces, unsubscribes and complaints arrive after the send, so
  //    after a fall those of the bigger days before are divided by the smaller volume
  //    and the ratio reads too HIGH. A rise makes it read too low, never too high: a
  //    list import with a bad rate fires at once (PinpointeOpenRateDropped, which a
  //    rise does distort, keeps the guard both ways);
  //  * keep_firing_for holds the alert across an exporter outage or a short dip.
  local rateAlert(a, name, events, prefix, what, eventsText, rateText, advice) =
    local vars = {
      ar: ar,
      name: name,
      ratio: rule + events + '_per_recipients:ratio_delta24h',
      rate: threshold(prefix + '_rate'),
      resolve: threshold('resolve_factor'),
      events: rule + events + ':delta24h',
      minEvents: threshold(prefix + '_min_events_24h'),
      minRecipients: threshold(prefix + '_min_recipients_24h'),
      swing: threshold('volume_swing_factor'),
    };
    a.rule(
      name,
      text.fill(|||
        (
            %(ratio)s
          > %(rate)s
          or
          (
              %(ratio)s
            > %(rate)s * %(resolve)s
            and on (%(ar)s)
            ALERTS{alertname="%(name)s", alertstate="firing"}
          )
        )
        and on (%(ar)s)
        %(events)s >= %(minEvents)s
        and on (%(ar)s)
        account_autoresponder:pinpointe_autoresponder_recipients:delta24h >= %(minRecipients)s
        unless on (%(ar)s)
        account_autoresponder:pinpointe_autoresponder_recipients_per_recipients_a_week_earlier:ratio_delta24h < 1 / %(swing)s
      |||, vars),
      'warning',
      summary=text.sub('High %s rate: autoresponder {{ $labels.autoresponder_name }} of Pinpointe account {{ $labels.account }}', [what]),
      description=|||
        {{ $value | humanizePercentage }} of the emails sent in the last 24 hours by
        autoresponder "{{ $labels.autoresponder_name }}" (id {{ $labels.autoresponder_id }})
        of Pinpointe account {{ $labels.account }} %(did)s, above the threshold of
        %(rate)s (counted with at least
        %(minRecipients)s recipients and %(minEvents)s %(eventsText)s;
        it resolves below %(resolve)s).
        %(advice)s
      |||,
      figure=text.sub('%s rate {{ $value | humanizePercentage }} over the last 24 h; the alert fires above %%(rate)s', [what]),
      dashboard=a.dashboard('autoresponders', ['account', 'autoresponder_id']),
      values={
        did: rateText,
        eventsText: eventsText,
        advice: advice,
        rate: text.thresholdText(prefix + '_rate', 'percent'),
        minRecipients: text.thresholdText(prefix + '_min_recipients_24h'),
        minEvents: text.thresholdText(prefix + '_min_events_24h'),
        resolve: text.sub('{{ with query "pinpointe:alert_threshold{threshold=\'%s_rate\'} * on () pinpointe:alert_threshold{threshold=\'resolve_factor\'}" }}{{ . | first | value | humanizePercentage }}{{ end }}', [prefix]),
      },
    ),

  group(config)::
    local a = alert.with(config);
    local sel = config.pinpointeSelector;
    local dashboard = a.dashboard('autoresponders', ['account', 'autoresponder_id']);
    {
      name: 'pinpointe-autoresponder',
      interval: config.slowRulesInterval,
      rules: [
        rateAlert(
          a, 'PinpointeHighBounceRate', 'bounces', 'bounce', 'bounce', 'bounces', 'bounced', |||
            Find where the new contacts of its list come from (a form without double opt-in,
            an import of an old or bought list), remove the bouncing addresses, and check
            the sending domain's SPF/DKIM if soft bounces dominate.
          |||
        ),
        rateAlert(
          a, 'PinpointeHighHardBounceRate', 'hard_bounces', 'hard_bounce', 'hard-bounce', 'hard bounces',
          'hard-bounced (address does not exist)', |||
            Mailbox providers read this as a badly kept list: find the source of the new
            contacts (a sign-up form open to typos or bots, a recent import), add address
            validation or double opt-in there, and make sure hard bounces are suppressed.
          |||
        ),
        rateAlert(
          a, 'PinpointeHighComplaintRate', 'complaints', 'complaint', 'spam-complaint', 'complaints',
          'were reported as spam (feedback loops)', |||
            This hurts the sender reputation of the whole account: pause the autoresponder if
            it keeps rising, check that its recipients asked for this mail (opt-in source,
            timing after sign-up), that the sender name is recognisable and that the
            unsubscribe link is prominent.
          |||
        ),
        rateAlert(
          a, 'PinpointeHighUnsubscribeRate', 'unsubscribes', 'unsubscribe', 'unsubscribe', 'unsubscribes',
          'unsubscribed', |||
            Review what changed in this autoresponder (content, frequency, the step that is
            sending now) and whether its audience matches what they signed up for.
          |||
        ),
      ] + (import 'autoresponder_volume.libsonnet').rules(config, a, dashboard),
    },
}
