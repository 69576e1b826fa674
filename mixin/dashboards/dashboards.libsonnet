// file name -> dashboard, as grafanaDashboards of the monitoring-mixins convention
local common = import 'common.libsonnet';

{
  all(config)::
    local c = common.with(config);
    {
      'pinpointe-autoresponders.json': (import 'autoresponders.libsonnet').dashboard(config, c),
      'pinpointe-exporter.json': (import 'exporter.libsonnet').dashboard(config, c),
    },
}
