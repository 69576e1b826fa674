// What both dashboards share: the frame, variables, links, the alert annotation, the
// colours of the rates at their alerts' thresholds, and selectors with the mixin's
// pinpointeSelector.
local text = import '../lib/text.libsonnet';
local panels = import 'panels.libsonnet';

{
  with(config):: {
    local c = self,
    // `metric{pinpointeSelector, matchers...}`: the exporter's own series
    raw(metric, matchers=[]):: text.sub('%s{%s}', [metric, std.join(', ', [config.pinpointeSelector] + matchers)]),

    // thresholds and decimals of a ratio at its alert's levels (complaint rates get two
    // decimals: 0.08 % and 0.12 % must not both read 0.1 %)
    rateStyle:: {
      bounces_per_recipients: { thresholds: panels.steps([['red', config.bounceRate]]), decimals: 1 },
      hard_bounces_per_recipients: { thresholds: panels.steps([['red', config.hardBounceRate]]), decimals: 1 },
      unsubscribes_per_recipients: { thresholds: panels.steps([['red', config.unsubscribeRate]]), decimals: 1 },
      complaints_per_recipients: {
        thresholds: panels.steps([['orange', config.complaintRateWarning], ['red', config.complaintRateCritical]]),
        decimals: 2,
      },
    },
    // fieldConfig defaults of a ratio: its alert's colours and decimals
    styled(stem)::
      local style = if std.objectHas(self.rateStyle, stem) then self.rateStyle[stem] else { thresholds: panels.steps(), decimals: 1 };
      style { color: { mode: 'thresholds' } },
    stale:: panels.steps([['orange', config.freshnessWarningPollIntervals], ['red', config.staleAfterPollIntervals]]),

    runbook(alert):: {
      title: 'Runbook: ' + alert,
      url: text.sub('%s#%s', [config.runbookURLBase, std.asciiLower(alert)]),
      targetBlank: true,
    },
    runbooksLink:: {
      title: 'Runbooks',
      type: 'link',
      url: config.runbookURLBase,
      icon: 'doc',
      includeVars: false,
      keepTime: false,
      asDropdown: false,
      tags: [],
      targetBlank: true,
      tooltip: '',
    },
    // A panel's link is a data link (title, url, targetBlank), not a dashboard link.
    runbooksPanelLink:: {
      title: 'Runbooks',
      url: config.runbookURLBase,
      targetBlank: true,
    },
    linkTo(title, uid):: {
      title: title,
      type: 'link',
      url: '/d/' + uid,
      icon: 'dashboard',
      includeVars: true,
      keepTime: true,
      asDropdown: false,
      tags: [],
      targetBlank: false,
      tooltip: '',
    },

    datasourceVariable:: {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      hide: 0,
      includeAll: false,
      multi: false,
      options: [],
      refresh: 1,
      regex: '',
      skipUrlSync: false,
    },
    queryVariable(name, label, query, regex=''):: {
      name: name,
      label: label,
      type: 'query',
      datasource: panels.datasource,
      definition: query,
      query: { qryType: 1, query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
      hide: 0,
      includeAll: true,
      allValue: '.+',
      multi: true,
      options: [],
      refresh: 2,
      regex: regex,
      skipUrlSync: false,
      sort: 1,
    },

    // The Pinpointe alerts firing, as annotations on every time series: those of the
    // selected accounts, and those without an account label (exporter down, target or
    // metrics missing, shard missing, reload failed), which concern every account.
    // (`$account|`: a multi-value selection is formatted as `(a|b)`, "All" as `.+`;
    // the empty alternative matches a missing label.)
    alertAnnotation:: {
      name: 'Pinpointe alerts',
      datasource: panels.datasource,
      enable: true,
      hide: false,
      iconColor: 'red',
      expr: 'ALERTS{alertstate="firing", alertname=~"Pinpointe.+", account=~"$account|"}',
      step: '1m',
      titleFormat: '{{alertname}}',
      tagKeys: 'severity,account,autoresponder_name',
      textFormat: '{{alertname}} {{account}} {{autoresponder_name}}',
      useValueForTime: false,
    },

    // One row per selected account with `label` set to `text`, for the accounts a
    // table's query has nothing for (so an empty table says so).
    placeholderRow(label, value)::
      text.sub(
        'or on (account)\nlabel_replace(0 * max by (account) (%s), "%s", "%s", "", "")',
        [self.raw('pinpointe_up', ['account=~"$account"']), label, value],
      ),

    dashboard(uid, title, description, variables, items, links):: {
      uid: uid,
      title: title,
      description: description,
      tags: config.dashboardTags,
      editable: true,
      graphTooltip: 1,
      timezone: config.dashboardTimezone,
      time: { from: 'now-24h', to: 'now' },
      timepicker: {},
      refresh: config.dashboardRefresh,
      fiscalYearStartMonth: 0,
      liveNow: false,
      schemaVersion: panels.schemaVersion,
      version: 1,
      annotations: { list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
        c.alertAnnotation,
      ] },
      links: links,
      templating: { list: variables },
      panels: panels.layout(items),
    },
  },
}
