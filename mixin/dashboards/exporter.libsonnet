// "Pinpointe exporter": polls per account, errors, API requests, records, the
// configuration and the shards of the exporter itself.
local text = import '../lib/text.libsonnet';
local panels = import 'panels.libsonnet';

{
  local acc = 'account=~"$account"',
  local job = 'job=~"$job"',
  local reloadMappings = [{ type: 'value', options: {
    '0': { text: 'FAILED', color: 'red', index: 0 },
    '1': { text: 'OK', color: 'green', index: 1 },
  } }],
  // an exporter without --shard serves no shard metrics: its panel says so
  local shardMappings = [{ type: 'value', options: {
    '0': { text: 'not sharded', color: 'text', index: 0 },
  } }],

  dashboard(config, c)::
    local staleness = text.sub('(time() - max by (account) (%s))\n/\nmax by (account) (%s)', [
      c.raw('pinpointe_last_success_timestamp_seconds', [acc]),
      c.raw('pinpointe_poll_interval_seconds', [acc]),
    ]);
    local staleText = 'where PinpointeDataStale fires';
    // 0 for each selected job whose exporters serve no shard metric
    local unsharded = text.sub('or on (job)\n0 * group by (job) (%s)', [c.raw('pinpointe_exporter_build_info', [job])]);
    c.dashboard(
      config.dashboardUIDs.exporter,
      'Pinpointe exporter',
      'Health of pinpointe-exporter: polls per account, errors, API requests, records.',
      [
        c.datasourceVariable,
        c.queryVariable('job', 'Job', text.sub('label_values(%s, job)', [c.raw('pinpointe_exporter_build_info')])),
        c.queryVariable('account', 'Account', text.sub('label_values(%s, account)', [c.raw('pinpointe_up', [job])])),
      ],
      [
        panels.row('Health'),
        panels.stat(
          'Accounts polled successfully',
          'pinpointe_up per account: UP if the last poll succeeded completely.',
          [panels.target(c.raw('pinpointe_up', [acc]), '{{account}}', instant=true)],
          'none', 8, textMode='value_and_name', mappings=panels.upMappings, colorMode='background',
        ),
        panels.stat(
          'Poll intervals since the last successful poll',
          'Orange from %g, red from %g poll intervals, %s.' % [config.freshnessWarningPollIntervals, config.staleAfterPollIntervals, staleText],
          [panels.target(staleness, '{{account}}', instant=true)],
          'none', 8, textMode='value_and_name', colorMode='background',
          field={ thresholds: c.stale, decimals: 1 },
          links=[c.runbook('PinpointeDataStale')],
        ),
        panels.stat(
          'Exporter targets',
          "Prometheus' own scrape health of the exporter instances (up).",
          [panels.target(c.raw('up', [job]), '{{instance}}', instant=true)],
          'none', 4, textMode='value_and_name', mappings=panels.upMappings, colorMode='background',
        ),
        panels.stat(
          'Exporter version',
          'pinpointe_exporter_build_info',
          [panels.target(c.raw('pinpointe_exporter_build_info', [job]), '{{version}}', instant=true)],
          'none', 4, textMode='name',
        ),
        panels.stateTimeline('Poll status over time', 'pinpointe_up per account over time.', [panels.target(c.raw('pinpointe_up', [acc]), '{{account}}')], 24, 5),
        panels.row('Polls'),
        panels.timeseries('Poll duration', 'Wall time of the last poll of each account.', [panels.target(c.raw('pinpointe_poll_duration_seconds', [acc]), '{{account}}')], 's'),
        panels.timeseries(
          'Poll intervals since the last successful poll',
          text.sub('Time since the end of the last fully successful poll, in poll intervals, per account; the dashed line is %s.', [staleText]),
          [panels.target(staleness, '{{account}}')],
          'none',
          field={ thresholds: c.stale, decimals: 1 },
          links=[c.runbook('PinpointeDataStale')],
        ),
        panels.timeseries(
          'Poll errors by reason',
          'Failed polls per reason (auth, http, timeout, ...) in each interval.',
          [panels.target(text.sub('sum by (account, reason) (increase(%s[$__rate_interval]))', [c.raw('pinpointe_poll_errors_total', [acc])]), '{{account}} {{reason}}')],
          'short',
        ),
        panels.timeseries(
          'API requests by status code',
          'HTTP requests the exporter sends to Pinpointe, per second, by status code (error = no response).',
          [panels.target(text.sub('sum by (account, code) (rate(%s[$__rate_interval]))', [c.raw('pinpointe_api_requests_total', [acc])]), '{{account}} {{code}}')],
          'reqps',
        ),
        panels.row('Configuration and shards'),
        panels.stat(
          'Configuration reload',
          'pinpointe_exporter_config_last_reload_successful per exporter: FAILED when the last reload (SIGHUP or POST /-/reload) failed and the previous configuration is still in force.',
          [panels.target(c.raw('pinpointe_exporter_config_last_reload_successful', [job]), '{{instance}}', instant=true)],
          'none', 8, textMode='value_and_name', mappings=reloadMappings, colorMode='background',
          links=[c.runbook('PinpointeExporterConfigReloadFailed')],
        ),
        panels.stat(
          'Last successful configuration load',
          'When each exporter last loaded its configuration successfully (start or reload).',
          [panels.target(c.raw('pinpointe_exporter_config_last_reload_success_timestamp_seconds', [job]) + ' * 1000', '{{instance}}', instant=true)],
          'dateTimeFromNow', 8, textMode='value_and_name',
        ),
        panels.stat(
          'Shards reporting',
          'Sharded deployments (--shard INDEX/COUNT): distinct shard indexes reporting, and the configured count. PinpointeExporterShardMissing fires when fewer report. An exporter without --shard reads "not sharded".',
          [
            panels.target(text.sub('count by (job) (count_values by (job) ("shard", %s))\n%s', [c.raw('pinpointe_exporter_shard_index', [job]), unsharded]), 'reporting', 'A', instant=true),
            panels.target(text.sub('max by (job) (%s)\n%s', [c.raw('pinpointe_exporter_shard_count', [job]), unsharded]), 'configured', 'B', instant=true),
          ],
          'none', 8, textMode='value_and_name', mappings=shardMappings,
          links=[c.runbook('PinpointeExporterShardMissing')],
        ),
        panels.row('Data'),
        panels.timeseries('Records per account', 'Records in the published snapshot, by grouping (autoresponder, send).', [panels.target(c.raw('pinpointe_records', [acc]), '{{account}} {{grouping}}')], 'short'),
        panels.timeseries('Skipped values', 'Values in the snapshot that were not non-negative numbers and were skipped.', [panels.target(c.raw('pinpointe_skipped_values', [acc]), '{{account}} {{grouping}}')], 'short'),
        panels.table(
          'Unmapped API fields',
          "Numeric fields Pinpointe sent that no metric carries; map them with the account's field_map. A row '(none)' means every numeric field is mapped.",
          [panels.tableTarget(text.sub('%s\n%s', [c.raw('pinpointe_unmapped_field_info', [acc]), c.placeholderRow('field', '(none)')]), 'A')],
          [['field', 'Field', 'none', null]],
          'field',
          h=8,
          hide=['Time', 'Value', '__name__', 'instance', 'job'],
          descending=false,
        ),
      ],
      [c.linkTo('Pinpointe autoresponders', config.dashboardUIDs.autoresponders), c.runbooksLink],
    ),
}
