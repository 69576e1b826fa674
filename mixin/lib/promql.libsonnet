// PromQL fragments shared by the recording rules and the alerts.
local text = import 'text.libsonnet';
{
  // the labels of the account_autoresponder: level
  autoresponder:: 'account, autoresponder_id, autoresponder_name',

  // `metric{selector, matchers}`
  select(metric, selector, matchers='')::
    text.sub('%s{%s}', [metric, std.join(', ', std.filter(function(m) m != '', [selector, matchers]))]),

  // The engagement figure per autoresponder with the scrape target aggregated away
  // (a new pod with the same figures changes nothing).
  figure(metric, selector, matchers='', offset='')::
    text.sub('max by (%s) (%s%s)', [$.autoresponder, $.select(metric, selector, matchers), if offset == '' then '' else ' offset ' + offset]),

  // All bounce types summed, each type first aggregated over the scrape targets.
  bounceTypes(selector, matchers='', offset='')::
    text.sub('sum by (%s) (max by (%s, bounce_type) (%s%s))', [
      $.autoresponder,
      $.autoresponder,
      $.select('pinpointe_autoresponder_bounces', selector, matchers),
      if offset == '' then '' else ' offset ' + offset,
    ]),

  // `numerator / (denominator > 0)`: no value, never NaN or +Inf, when nothing was sent.
  ratio(numerator, denominator):: text.sub('%s\n/\n(%s > 0)', [numerator, denominator]),
}
