// A small panel library for the two dashboards (Grafana 10/11 JSON model, schema 39).
// Every query goes to the dashboard's "Data source" variable, no UID is hard-coded.
// Panels carry their size as a hidden field; layout() places them left to right,
// wrapping at 24 columns, and numbers them.
{
  schemaVersion:: 39,  // Grafana 10.4 / 11.x; older 10.x migrate it on load
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // absolute threshold steps, green below the first level: steps(['red', 0.05])
  steps(levels=[]):: {
    mode: 'absolute',
    steps: [{ color: 'green', value: null }] + [{ color: l[0], value: l[1] } for l in levels],
  },

  target(expr, legend='', ref='A', instant=false, format='time_series'):: {
    datasource: $.datasource,
    editorMode: 'code',
    expr: expr,
    format: format,
    instant: instant,
    legendFormat: if legend == '' then '__auto' else legend,
    range: !instant,
    refId: ref,
  },
  // a table query: instant, one row per series
  tableTarget(expr, ref):: $.target(expr, ref=ref, instant=true, format='table'),

  fieldConfig(unit, extra={}):: {
    defaults: {
      color: { mode: 'palette-classic' },
      unit: unit,
      thresholds: $.steps(),
    } + (if unit == 'percentunit' then { min: 0, decimals: 1 } else {}) + extra,
    overrides: [],
  },

  local panel(type, title, description, targets, size, links=[]) = {
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    targets: targets,
    links: links,
    size:: size,
  },

  stat(title, description, targets, unit, w, h=4, textMode='auto', mappings=[], colorMode='value', field={}, links=[])::
    panel('stat', title, description, targets, [w, h], links) + {
      fieldConfig: $.fieldConfig(unit, { color: { mode: 'thresholds' } } + field + (if mappings != [] then { mappings: mappings } else {})),
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: colorMode,
        graphMode: 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: textMode,
        wideLayout: true,
      },
    },

  timeseries(title, description, targets, unit, w=12, h=8, field={}, links=[])::
    local dashed = std.objectHas(field, 'thresholds');
    panel('timeseries', title, description, targets, [w, h], links) + {
      fieldConfig: $.fieldConfig(unit, {
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: 10,
          showPoints: 'never',
          spanNulls: true,
        } + (if dashed then { thresholdsStyle: { mode: 'dashed' } } else {}),
      } + field + (if dashed then { color: { mode: 'palette-classic' } } else {})),
      options: {
        legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  upMappings:: [{ type: 'value', options: {
    '0': { text: 'DOWN', color: 'red', index: 0 },
    '1': { text: 'UP', color: 'green', index: 1 },
  } }],

  stateTimeline(title, description, targets, w, h, field={ color: { mode: 'thresholds' }, mappings: $.upMappings }, showValue='never', links=[])::
    panel('state-timeline', title, description, targets, [w, h], links) + {
      fieldConfig: $.fieldConfig('none', field),
      options: {
        showValue: showValue,
        mergeValues: true,
        rowHeight: 0.9,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
      },
    },

  // columns: [[field name in the merged frame, display name, unit, style]], style: the
  // fieldConfig of a ratio coloured at its alert's levels, or null
  table(title, description, targets, columns, sortBy, w=24, h=10, hide=['Time'], descending=true, links=[], overrides=[])::
    local columnOverrides = [
      {
        matcher: { id: 'byName', options: c[0] },
        properties: [{ id: 'unit', value: c[2] }] + (
          if c[3] != null then [
            { id: 'decimals', value: c[3].decimals },
            { id: 'thresholds', value: c[3].thresholds },
            { id: 'custom.cellOptions', value: { type: 'color-background' } },
          ] else if c[2] == 'percentunit' then [{ id: 'decimals', value: 1 }] else []
        ),
      }
      for c in columns
    ];
    local order = ['alertname', 'severity', 'account', 'autoresponder_name', 'autoresponder_id', 'send_id'] + [c[0] for c in columns];
    panel('table', title, description, targets, [w, h], links) + {
      fieldConfig: {
        defaults: { custom: { align: 'auto', filterable: true } },
        overrides: columnOverrides + overrides,
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        sortBy: [{ displayName: [c[1] for c in columns if c[0] == sortBy][0], desc: descending }],
      },
      transformations: [
        { id: 'merge', options: {} },
        {
          id: 'organize',
          options: {
            excludeByName: { [name]: true for name in hide },
            // a column named like a label keeps its last place
            indexByName: std.foldl(function(acc, i) acc { [order[i]]: i }, std.range(0, std.length(order) - 1), {}),
            renameByName: {
              account: 'Account',
              alertname: 'Alert',
              severity: 'Severity',
              autoresponder_name: 'Autoresponder',
              autoresponder_id: 'ID',
              send_id: 'Send',
            } + { [c[0]]: c[1] for c in columns },
          },
        },
      ],
    },

  row(title, collapsed=false, repeat=null, panels=[]):: {
    type: 'row',
    title: title,
    collapsed: collapsed,
    panels: [],
    [if repeat != null then 'repeat']: repeat,
    children:: panels,
  },

  // Positions and ids, as Grafana stores them: an expanded row's panels follow it, a
  // collapsed row holds its panels (placed as if it were open) and takes one line.
  layout(items)::
    local place(state, p) =
      local wrap = state.x + p.size[0] > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.rowH else state.y;
      local rowH = if wrap then 0 else state.rowH;
      state {
        id: state.id + 1,
        x: x + p.size[0],
        y: y,
        rowH: std.max(rowH, p.size[1]),
        placed: state.placed + [p { id: state.id, gridPos: { h: p.size[1], w: p.size[0], x: x, y: y } }],
      };
    local step(state, item) =
      if item.type != 'row' then
        local placed = place(state { placed: [] }, item);
        placed { placed: [], out: state.out + placed.placed }
      else
        local rowY = state.y + state.rowH;
        local start = state { id: state.id + 1, x: 0, y: rowY + 1, rowH: 0, placed: [] };
        local children = std.foldl(place, item.children, start);
        local header = item { id: state.id, gridPos: { h: 1, w: 24, x: 0, y: rowY } };
        if item.collapsed then
          state { id: children.id, x: 0, y: rowY + 1, rowH: 0, out: state.out + [header { panels: children.placed }] }
        else
          children { out: state.out + [header] + children.placed };
    std.foldl(step, items, { id: 1, x: 0, y: 0, rowH: 0, placed: [], out: [] }).out,
}
