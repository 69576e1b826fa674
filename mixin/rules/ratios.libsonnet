// Lifetime ratios of Pinpointe's cumulative figures, per autoresponder and per account.
// Ratios of sums: two pods reporting the same figures during a rollout double the
// numerator and the denominator alike. Per account the components are summed before
// dividing (an average of ratios would weigh a 10-recipient autoresponder like a
// 100,000-recipient one).
local text = import '../lib/text.libsonnet';
local promql = import '../lib/promql.libsonnet';

{
  // [recording rule stem, numerator metric, its extra matchers, denominator metric]
  ratios:: [
    ['unique_opens_per_recipients', 'pinpointe_autoresponder_unique_opens', '', 'pinpointe_autoresponder_recipients'],
    ['unique_clicks_per_recipients', 'pinpointe_autoresponder_unique_clicks', '', 'pinpointe_autoresponder_recipients'],
    ['unique_clicks_per_unique_opens', 'pinpointe_autoresponder_unique_clicks', '', 'pinpointe_autoresponder_unique_opens'],
    ['bounces_per_recipients', 'pinpointe_autoresponder_bounces', '', 'pinpointe_autoresponder_recipients'],
    ['hard_bounces_per_recipients', 'pinpointe_autoresponder_bounces', 'bounce_type="hard"', 'pinpointe_autoresponder_recipients'],
    ['unsubscribes_per_recipients', 'pinpointe_autoresponder_unsubscribes', '', 'pinpointe_autoresponder_recipients'],
    ['complaints_per_recipients', 'pinpointe_autoresponder_complaints', '', 'pinpointe_autoresponder_recipients'],
  ],

  group(config)::
    local sel = config.pinpointeSelector;
    local level(name, by) = [
      {
        record: text.sub('%s:pinpointe_autoresponder_%s:ratio', [name, r[0]]),
        expr: promql.ratio(
          text.sub('sum by (%s) (%s)', [by, promql.select(r[1], sel, r[2])]),
          text.sub('sum by (%s) (%s)', [by, promql.select(r[3], sel)]),
        ),
      }
      for r in $.ratios
    ];
    {
      name: 'pinpointe-autoresponder-ratios',
      interval: config.slowRulesInterval,
      rules: level('account_autoresponder', promql.autoresponder) + level('account', 'account'),
    },
}
