// Small helpers for rule text: durations in words, folded paragraphs, threshold reads.
{
  // The mixin formats with these two instead of std.format's `%`, which the C++ jsonnet
  // of the jsonnet package runs as jsonnet code: seconds for texts as long as these.
  // `template` with each %s replaced by the next of args, and %% by %:
  sub(template, args)::
    local parts = std.split(std.strReplace(template, '%%', '\u0000'), '%s');
    assert std.length(parts) == std.length(args) + 1 : 'placeholders and arguments of: ' + template;
    local joined = std.join('', [parts[i] + std.toString(args[i]) for i in std.range(0, std.length(args) - 1)]) + parts[std.length(args)];
    std.strReplace(joined, '\u0000', '%'),
  // `template` with every %(name)s replaced by vars[name], and %% by %:
  fill(template, vars)::
    local filled = std.foldl(function(s, k) std.strReplace(s, '%(' + k + ')s', vars[k]), std.objectFields(vars), template);
    std.strReplace(filled, '%%', '%'),

  // A ||| block as one line, as YAML's folded style (>-) reads it.
  fold(text):: std.join(' ', std.filter(function(line) line != '', std.split(text, '\n'))),

  local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' },
  // '5m' -> '5 minutes', '1h' -> '1 hour', '1h30m' -> '1 hour 30 minutes'
  humanDuration(duration)::
    local parse(rest, number, out) =
      if rest == '' then out
      else
        local c = rest[0];
        local tail = std.substr(rest, 1, std.length(rest) - 1);
        if std.member('0123456789', c) then parse(tail, number + c, out)
        else
          local n = std.parseInt(number);
          parse(tail, '', out + [number + ' ' + units[c] + (if n == 1 then '' else 's')]);
    std.join(' ', parse(duration, '', [])),

  // The threshold series every alert expression reads (one place to edit them in the
  // rendered alerts.yml, for those who do not use jsonnet).
  threshold(name):: 'scalar(pinpointe:alert_threshold{threshold="' + name + '"})',

  // The threshold's value in an annotation, printed at expansion time.
  thresholdText(name, format='value')::
    local pipe = if format == 'percent' then ' | humanizePercentage' else '';
    '{{ with query "pinpointe:alert_threshold{threshold=\'' + name + '\'}" }}{{ . | first | value' + pipe + ' }}{{ end }}',

  // 0.001 -> '0.1 %', as the summaries print a rate of _config
  percent(ratio):: '%s %%' % ('%.12g' % (ratio * 100)),

  // a number as PromQL and people write it (0.05, not 0.050000000000000003)
  num(x):: '%.15g' % x,
}
