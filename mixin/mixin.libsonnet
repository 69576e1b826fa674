// The pinpointe-exporter monitoring mixin: recording rules, alerts and Grafana
// dashboards, tuned through _config (config.libsonnet lists every key).
//
//   local pinpointe = (import 'mixin/mixin.libsonnet') + {
//     _config+:: { pinpointeSelector: 'job="email"', complaintRateCritical: 0.002 },
//   };
//   std.manifestYamlDoc(pinpointe.prometheusAlerts)
(import 'config.libsonnet') + {
  local config = self._config,

  prometheusRules+:: {
    groups+: [
      (import 'rules/ratios.libsonnet').group(config),
      (import 'rules/volumes.libsonnet').hourlyGroup(config),
      (import 'rules/volumes.libsonnet').group(config),
    ],
  },

  prometheusAlerts+:: {
    groups+: [
      (import 'alerts/thresholds.libsonnet').group(config),
      (import 'alerts/exporter.libsonnet').group(config),
      (import 'alerts/exporter_data.libsonnet').group(config),
      (import 'alerts/autoresponder.libsonnet').group(config),
      (import 'alerts/account.libsonnet').group(config),
    ],
  },

  grafanaDashboards+:: (import 'dashboards/dashboards.libsonnet').all(config),

  // The threshold table of the rendered alerts.yml's header: [series, value, use].
  thresholdTable:: [
    [row[0], config[row[1]], row[2]]
    for row in (import 'alerts/thresholds.libsonnet').table
  ],
}
