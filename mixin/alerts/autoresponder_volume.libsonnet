// The autoresponder alerts that compare with a week earlier: a stop, an open-rate drop.
local promql = import '../lib/promql.libsonnet';
local text = import '../lib/text.libsonnet';

{
  rules(config, a, dashboard)::
    local sel = config.pinpointeSelector;
    local recipients(offset='') = promql.figure('pinpointe_autoresponder_recipients', sel, '', offset);
    local rule = 'account_autoresponder:pinpointe_autoresponder_';
    [
      // $value = recipients in the same 24 h a week earlier. Silence is judged against
      // the autoresponder's own weekly rhythm: it fires only when
      //  * the same 24 h one week earlier had sends (a Monday-to-Friday autoresponder
      //    is silent all weekend, as it was the weekend before);
      //  * the figure now is not above the one 24 h ago: needs a sample at the window
      //    start, so data returning after a long gap is not a stop;
      //  * no whole clock hour of the last 24 grew (the 24 h volume, which counts
      //    growing hours only, is 0): a fall (deleted send) does not hide sends.
      a.rule(
        'PinpointeAutoresponderStoppedSending',
        text.fill(|||
          (
              %(weekAgo)s
            - %(weekAndDayAgo)s
          )
          >= %(min)s
          and on (%(ar)s)
          (
              %(now)s
            - %(dayAgo)s
          )
          <= 0
          and on (%(ar)s)
          %(rule)srecipients:delta24h <= 0
        |||, {
          ar: promql.autoresponder,
          rule: rule,
          weekAgo: recipients('7d'),
          weekAndDayAgo: recipients('8d'),
          now: recipients(),
          dayAgo: recipients('24h'),
          min: text.threshold('stopped_sending_min_recipients_week_ago'),
        }),
        'warning',
        summary='Autoresponder {{ $labels.autoresponder_name }} of Pinpointe account {{ $labels.account }} stopped sending',
        description=|||
          Autoresponder "{{ $labels.autoresponder_name }}" (id {{ $labels.autoresponder_id }})
          of Pinpointe account {{ $labels.account }} has sent no email in the last 24 hours,
          although it sent {{ printf "%%.0f" $value }} in the same 24 hours a week earlier. Check in
          Pinpointe that it is still active, that its trigger (list subscription, form, date
          field) still fires, and that the sign-up form or integration feeding its list still
          adds contacts.
        |||,
        figure='no email sent in the last 24 h, against {{ printf "%%.0f" $value }} in the same 24 h a week earlier (the alert needs at least %(min)s then)',
        dashboard=dashboard,
        values={ min: text.thresholdText('stopped_sending_min_recipients_week_ago') },
      ),
      // Compares the open rate of the last 24 h with the same 24 h one week earlier,
      // both with enough recipients, and not while the volume swings either way
      // against a week earlier: a rise (a list import) lowers the open rate, as the
      // opens of the new volume arrive hours later.
      a.rule(
        'PinpointeOpenRateDropped',
        text.fill(|||
          %(rule)sunique_opens_per_recipients:ratio_delta24h
          < %(factor)s * (%(rule)sunique_opens_per_recipients:ratio_delta24h offset 7d)
          and on (%(ar)s)
          %(rule)srecipients:delta24h >= %(min)s
          and on (%(ar)s)
          (%(rule)srecipients:delta24h offset 7d) >= %(min)s
          unless on (%(ar)s)
          (
              %(rule)srecipients_per_recipients_a_week_earlier:ratio_delta24h > %(swing)s
            or
              %(rule)srecipients_per_recipients_a_week_earlier:ratio_delta24h < 1 / %(swing)s
          )
        |||, {
          ar: promql.autoresponder,
          rule: rule,
          factor: text.threshold('open_rate_drop_factor'),
          min: text.threshold('open_rate_min_recipients_24h'),
          swing: text.threshold('volume_swing_factor'),
        }),
        'warning',
        summary='Open rate of autoresponder {{ $labels.autoresponder_name }} of Pinpointe account {{ $labels.account }} dropped',
        description=|||
          The open rate of autoresponder "{{ $labels.autoresponder_name }}"
          (id {{ $labels.autoresponder_id }}) of Pinpointe account {{ $labels.account }}
          over the last 24 hours is {{ $value | humanizePercentage }}, less than
          %(factor)s
          of the
          %(weekAgo)s
          it had at the same time a week earlier, with a similar volume. Its mail is probably
          landing in spam: check the account's sender reputation (Google Postmaster Tools),
          recent bounce and complaint rates, and whether the subject, sender or tracking
          domain of this autoresponder changed.
        |||,
        figure='open rate {{ $value | humanizePercentage }} over the last 24 h, less than %(factor)s of the %(weekAgo)s of a week earlier',
        dashboard=dashboard,
        values={
          factor: text.thresholdText('open_rate_drop_factor', 'percent'),
          weekAgo: text.sub('{{ with printf "%sunique_opens_per_recipients:ratio_delta24h{account=\'%%s\',autoresponder_id=\'%%s\'} offset 7d" $labels.account $labels.autoresponder_id | query }}{{ . | first | value | humanizePercentage }}{{ end }}', [rule]),
        },
      ),
    ],
}
