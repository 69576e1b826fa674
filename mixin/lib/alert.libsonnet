// One alerting rule in the house style: severity, the durations of _config, and five
// annotations: summary and description (for whoever reads the alert in full), figure
// (the figure against its threshold in one line, for notifications), runbook_url and
// dashboard_url (the dashboard of the figure with the alert's account and
// autoresponder selected).
local text = import 'text.libsonnet';

{
  // dashboard variable of each label an alert may carry
  local variables = { job: 'job', account: 'account', autoresponder_id: 'autoresponder' },

  with(config):: {
    // The URL of one of the dashboards of _config.dashboardUIDs with the alert's labels
    // as variable values (Go template, expanded by Prometheus).
    dashboard(which, labels)::
      local query = std.join('&', [
        text.sub('var-%s={{ $labels.%s | urlquery }}', [variables[label], label])
        for label in labels
      ]);
      text.sub('%s/d/%s%s', [config.grafanaURL, config.dashboardUIDs[which], if query == '' then '' else '?' + query]),

    rule(name, expr, severity, summary, description, figure, dashboard, values={})::
      local vars = {
        'for': text.humanDuration(config.alertFor[name]),
        selector: config.pinpointeSelector,
      } + values;
      {
        alert: name,
        expr: expr,
        'for': config.alertFor[name],
        [if std.objectHas(config.alertKeepFiringFor, name) then 'keep_firing_for']:
          config.alertKeepFiringFor[name],
        labels: { severity: severity },
        annotations: {
          summary: text.fill(summary, vars),
          description: text.fold(text.fill(description, vars)),
          figure: text.fill(figure, vars),
          runbook_url: text.sub('%s#%s', [config.runbookURLBase, std.asciiLower(name)]),
          dashboard_url: dashboard,
        },
      },
  },
}
