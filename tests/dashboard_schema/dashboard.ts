// The type every rendered dashboard must satisfy (tests/integration/test_dashboard_schema.py): Grafana's
// published dashboard model (@grafana/schema), with each panel's `options` and
// `fieldConfig.defaults.custom` typed by its plugin's published schema, plus the explicit
// allow-list below of the fields Grafana's core schema does not describe.
import type { AnnotationQuery, Dashboard, DataQuery, Panel, RowPanel, VariableModel } from '@grafana/schema';
import type * as annolist from '@grafana/schema/dist/esm/raw/composable/annotationslist/panelcfg/x/AnnotationsListPanelCfg_types.gen';
import type * as barchart from '@grafana/schema/dist/esm/raw/composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as candlestick from '@grafana/schema/dist/esm/raw/composable/candlestick/panelcfg/x/CandlestickPanelCfg_types.gen';
import type * as canvas from '@grafana/schema/dist/esm/raw/composable/canvas/panelcfg/x/CanvasPanelCfg_types.gen';
import type * as dashlist from '@grafana/schema/dist/esm/raw/composable/dashboardlist/panelcfg/x/DashboardListPanelCfg_types.gen';
import type * as gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as geomap from '@grafana/schema/dist/esm/raw/composable/geomap/panelcfg/x/GeomapPanelCfg_types.gen';
import type * as heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as histogram from '@grafana/schema/dist/esm/raw/composable/histogram/panelcfg/x/HistogramPanelCfg_types.gen';
import type * as logs from '@grafana/schema/dist/esm/raw/composable/logs/panelcfg/x/LogsPanelCfg_types.gen';
import type * as news from '@grafana/schema/dist/esm/raw/composable/news/panelcfg/x/NewsPanelCfg_types.gen';
import type * as nodegraph from '@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen';
import type * as piechart from '@grafana/schema/dist/esm/raw/composable/piechart/panelcfg/x/PieChartPanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as statetimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as statushistory from '@grafana/schema/dist/esm/raw/composable/statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as trend from '@grafana/schema/dist/esm/raw/composable/trend/panelcfg/x/TrendPanelCfg_types.gen';
import type * as xychart from '@grafana/schema/dist/esm/raw/composable/xychart/panelcfg/x/XYChartPanelCfg_types.gen';
import type * as raw from '@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen';
import type { DataLink } from '@grafana/schema/apis/dashboard.grafana.app/v2';

// ---- The allow-list: fields Grafana's core schema does not know. ----

// A panel query's fields beside DataQuery's (refId, datasource, hide...) belong to the data
// source plugin. The Prometheus plugin's query type left @grafana/schema in 11.0 (10.4 still
// published it as PrometheusDataQuery); these are the fields the dashboards use, with that
// type's value types.
interface PrometheusQueryFields {
  expr: string; // the PromQL
  legendFormat?: string; // series name template, or "__auto"
  instant?: boolean; // evaluate at the end of the range only
  range?: boolean; // evaluate over the range
  format?: 'time_series' | 'table' | 'heatmap'; // shape of the returned frames
  editorMode?: 'code' | 'builder'; // which query editor Grafana opens
}

// A Prometheus annotation keeps its query at the top level of the annotation, where the
// Prometheus plugin's annotation support reads it; the core AnnotationQuery has no such fields.
interface PrometheusAnnotationFields {
  expr: string; // the PromQL whose series become annotations
  step: string; // query resolution
  titleFormat: string; // annotation title template
  textFormat: string; // annotation text template
  tagKeys: string; // comma-separated labels that become the annotation's tags
  useValueForTime: boolean; // take the time from the sample value instead of its timestamp
}

// Grafana's query variables carry `definition` (the query as shown in the variable list:
// QueryVariableModel in @grafana/data has it), which the schema's VariableModel lacks.
interface QueryVariableFields {
  definition: string;
}

// ---- One correction of the core schema. ----

// The core schema types a panel's `links` as dashboard links (DashboardLink: type, icon,
// tooltip, tags... required), but Grafana's panel links are data links, {title, url,
// targetBlank}, as its panel editor writes them: PanelModel.links is DataLink[] in Grafana,
// and Grafana's v2 dashboard schema (also in @grafana/schema) types them so. Use that type.
type PanelLink = DataLink;

// ---- Grafana's types, as JSON spells them. ----

// A value as a JSON file writes it: a string enum member is its string value
// (numeric enums already accept their number literals).
type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? Json<Item>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

// Plugin options and custom field config: Grafana fills every absent key from the plugin's
// defaults when it loads a panel, so each key is optional at every depth; the keys present
// must be the plugin's and have its types.
type Defaulted<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? Defaulted<Item>[]
    : T extends object
      ? { [K in keyof T]?: Defaulted<T[K]> }
      : T;

// Panels whose plugin publishes options but no custom field config.
type NoCustomConfig = Record<string, never>;

type FieldDefaults<Custom> = Omit<Json<raw.FieldConfig>, 'custom'> & { custom?: Defaulted<Custom> };

// An override property's id is the path of the field config property it sets
// (`unit`, `custom.cellOptions`...): its value has that property's type.
type CoreKey = Exclude<keyof raw.FieldConfig, 'custom'>;
type CoreProperty = { [Key in CoreKey]-?: { id: Key; value?: Json<raw.FieldConfig[Key]> } }[CoreKey];
type CustomKey<Custom> = keyof Custom & string;
type CustomProperty<Custom> = {
  [Key in CustomKey<Custom>]-?: { id: `custom.${Key}`; value?: Defaulted<Custom[Key]> };
}[CustomKey<Custom>];
type OverrideProperty<Custom> = CoreProperty | CustomProperty<Custom>;

type Override<Custom> = Omit<Json<raw.FieldConfigSource['overrides'][number]>, 'properties'> & {
  properties: OverrideProperty<Custom>[];
};

interface FieldConfigOf<Custom> {
  defaults: FieldDefaults<Custom>;
  overrides: Override<Custom>[];
}

type PrometheusQuery = Json<DataQuery> & PrometheusQueryFields;

type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'links'
> & {
  type: Type;
  links?: PanelLink[];
  options?: Defaulted<Options>;
  fieldConfig?: FieldConfigOf<Custom>;
  targets?: PrometheusQuery[]; // the dashboards query Prometheus only
};

// Grafana's core panel plugins whose schema @grafana/schema publishes, by plugin id. A panel
// of any other type is an error: add its plugin here (with its published types) to use it.
interface PanelPlugins {
  annolist: [annolist.Options, NoCustomConfig];
  barchart: [barchart.Options, barchart.FieldConfig];
  bargauge: [bargauge.Options, NoCustomConfig];
  candlestick: [candlestick.Options, candlestick.FieldConfig];
  canvas: [canvas.Options, NoCustomConfig];
  dashlist: [dashlist.Options, NoCustomConfig];
  gauge: [gauge.Options, NoCustomConfig];
  geomap: [geomap.Options, NoCustomConfig];
  heatmap: [heatmap.Options, heatmap.FieldConfig];
  histogram: [histogram.Options, histogram.FieldConfig];
  logs: [logs.Options, NoCustomConfig];
  news: [news.Options, NoCustomConfig];
  nodeGraph: [nodegraph.Options, NoCustomConfig];
  piechart: [piechart.Options, piechart.FieldConfig];
  stat: [stat.Options, NoCustomConfig];
  'state-timeline': [statetimeline.Options, statetimeline.FieldConfig];
  'status-history': [statushistory.Options, statushistory.FieldConfig];
  table: [table.Options, table.FieldConfig];
  text: [text.Options, NoCustomConfig];
  timeseries: [timeseries.Options, timeseries.FieldConfig];
  trend: [trend.Options, trend.FieldConfig];
  xychart: [xychart.Options, xychart.FieldConfig];
}

type PluginPanel = {
  [Type in keyof PanelPlugins]: PanelOf<Type, PanelPlugins[Type][0], PanelPlugins[Type][1]>;
}[keyof PanelPlugins];

type Row = Omit<Json<RowPanel>, 'panels'> & { panels: PluginPanel[] };

type Variable = Json<VariableModel> & Partial<QueryVariableFields>;

type Annotation = Json<AnnotationQuery> & Partial<PrometheusAnnotationFields>;

export type CheckedDashboard = Omit<Json<Dashboard>, 'panels' | 'templating' | 'annotations'> & {
  panels?: (PluginPanel | Row)[];
  templating?: { list?: Variable[] };
  annotations?: { list?: Annotation[] };
};
