#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""plot.py - latency over time from echo-bench, as an SVG picture.

    echo-bench --interval 0.5 --json ... > run.jsonl
    bench/plot.py run.jsonl -o run.svg [--title TEXT]

Reads echo-bench's JSON lines (one object per --interval, then the
summary object) and draws two panels over the run's time: p50, p99,
p99.9 and max latency of each interval on a logarithmic scale, and the
messages per second. Warm-up intervals are shaded. Python 3's standard
library only, so it runs wherever echo-bench's tests do.

Each series is an SVG <path> with the id series-p50, series-p99,
series-p99_9, series-max or series-rate (and a matching legend entry),
so the picture can be checked by a program as well as looked at; an
interval in which no echo completed leaves a gap in the latency lines.
Exit status: 0, 1 when the input has no interval line or is not JSON
lines, 2 on bad usage.
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 900, 560
LEFT, RIGHT = 80, 150  # room for the y labels and the legend
LAT_TOP, LAT_H = 50, 290
RATE_TOP, RATE_H = 395, 120

LATENCY_SERIES = [('p50', 'p50', '#1f77b4'), ('p99', 'p99', '#ff7f0e'),
                  ('p99_9', 'p99.9', '#d62728'), ('max', 'max', '#7f7f7f')]
RATE_COLOR = '#2ca02c'


def interval_ok(obj):
    lat = obj.get('latency_us')
    return (all(isinstance(obj.get(k), (int, float)) for k in ('t_s', 'duration_s',
                                                                 'messages_per_s')) and
            isinstance(lat, dict) and
            all(isinstance(lat.get(k), (int, float)) for k, _, _ in LATENCY_SERIES))


def read_lines(stream, name):
    """The interval objects and the summary (None if absent) of a run."""
    intervals, summary = [], None
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise SystemExit('plot.py: {}:{}: not a JSON line'.format(name, n))
        if 'interval' in obj:
            if not interval_ok(obj):
                raise SystemExit('plot.py: {}:{}: an interval line without t_s, duration_s, '
                                 'messages_per_s and latency_us'.format(name, n))
            intervals.append(obj)
        elif 'connect' in obj:
            summary = obj
    if not intervals:
        raise SystemExit('plot.py: {}: no interval line (run echo-bench with --interval and '
                         '--json)'.format(name))
    return intervals, summary


def fmt_latency(us):
    if us >= 1e6:
        return '{:g} s'.format(us / 1e6)
    if us >= 1e3:
        return '{:g} ms'.format(us / 1e3)
    return '{:g} us'.format(us)


def fmt_count(v):
    if v >= 1e6:
        return '{:g}M'.format(v / 1e6)
    if v >= 1e3:
        return '{:g}k'.format(v / 1e3)
    return '{:g}'.format(v)


def nice_step(span, ticks=5):
    """A round step (1, 2 or 5 times a power of ten) for about `ticks`."""
    raw = span / ticks if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


class Svg:
    def __init__(self):
        self.parts = []

    def add(self, text):
        self.parts.append(text)

    def text(self, x, y, s, anchor='start', size=12, weight='normal'):
        self.add('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" font-size="{}" '
                 'font-weight="{}">{}</text>'.format(x, y, anchor, size, weight, escape(s)))

    def line(self, x1, y1, x2, y2, color='#ccc'):
        self.add('<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" '
                 'stroke-width="1"/>'.format(x1, y1, x2, y2, color))

    def series(self, ident, points, color):
        """A line through the points; None in the list leaves a gap."""
        d, pen = [], 'M'
        for p in points:
            if p is None:
                pen = 'M'
                continue
            d.append('{}{:.1f},{:.1f}'.format(pen, p[0], p[1]))
            pen = 'L'
        self.add('<path id="{}" fill="none" stroke="{}" stroke-width="1.8" '
                 'stroke-linejoin="round" d="{}"/>'.format(ident, color, ' '.join(d)))

    def render(self):
        head = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                'viewBox="0 0 {w} {h}" font-family="sans-serif">'
                '<rect width="{w}" height="{h}" fill="white"/>').format(w=WIDTH, h=HEIGHT)
        return head + '\n'.join(self.parts) + '</svg>\n'


def time_axis(svg, t_end):
    """x(t) for the run's time, with the grid and labels under the rate."""
    plot_w = WIDTH - LEFT - RIGHT

    def x(t):
        return LEFT + plot_w * t / t_end

    step = nice_step(t_end, 10)
    t = 0.0
    while t <= t_end + 1e-9:
        svg.line(x(t), LAT_TOP, x(t), LAT_TOP + LAT_H, '#eee')
        svg.line(x(t), RATE_TOP, x(t), RATE_TOP + RATE_H, '#eee')
        svg.text(x(t), RATE_TOP + RATE_H + 16, '{:g}'.format(t), 'middle', 11)
        t += step
    svg.text(LEFT + plot_w / 2, RATE_TOP + RATE_H + 34, 'seconds from the start', 'middle')
    return x


def shade_warmup(svg, intervals, x):
    for o in intervals:
        if o.get('warmup'):
            x0, x1 = x(o['t_s'] - o['duration_s']), x(o['t_s'])
            for top, h in ((LAT_TOP, LAT_H), (RATE_TOP, RATE_H)):
                svg.add('<rect class="warmup" x="{:.1f}" y="{}" width="{:.1f}" height="{}" '
                        'fill="#f3f3f3"/>'.format(x0, top, x1 - x0, h))


def latency_panel(svg, intervals, x):
    values = [o['latency_us'][key] for o in intervals for key, _, _ in LATENCY_SERIES]
    positive = [v for v in values if v > 0] or [1.0]
    lo = 10 ** math.floor(math.log10(max(min(positive), 1.0)))
    hi = 10 ** math.ceil(math.log10(max(max(positive), lo * 10)))

    def y(us):
        v = min(max(us, lo), hi)
        return LAT_TOP + LAT_H * (1 - (math.log10(v) - math.log10(lo)) /
                                  (math.log10(hi) - math.log10(lo)))

    decade = lo
    while decade <= hi * 1.0001:
        svg.line(LEFT, y(decade), WIDTH - RIGHT, y(decade))
        svg.text(LEFT - 6, y(decade) + 4, fmt_latency(decade), 'end', 11)
        decade *= 10
    svg.text(LEFT, LAT_TOP - 8, 'latency per interval (log scale)', size=12, weight='bold')
    for n, (key, label, color) in enumerate(LATENCY_SERIES):
        # An interval in which nothing completed has no latency: a gap.
        svg.series('series-' + key, [(x(o['t_s']), y(o['latency_us'][key]))
                                     if o.get('messages', 1) else None for o in intervals],
                   color)
        legend(svg, n, label, color, 'legend-' + key)


def rate_panel(svg, intervals, x):
    top = max(o['messages_per_s'] for o in intervals)
    step = nice_step(top if top > 0 else 1, 4)
    hi = step * math.ceil(top / step) if top > 0 else step

    def y(v):
        return RATE_TOP + RATE_H * (1 - v / hi)

    v = 0.0
    while v <= hi + 1e-9:
        svg.line(LEFT, y(v), WIDTH - RIGHT, y(v))
        svg.text(LEFT - 6, y(v) + 4, fmt_count(v), 'end', 11)
        v += step
    svg.text(LEFT, RATE_TOP - 8, 'messages/s per interval', size=12, weight='bold')
    svg.series('series-rate', [(x(o['t_s']), y(o['messages_per_s'])) for o in intervals],
               RATE_COLOR)
    legend(svg, len(LATENCY_SERIES), 'messages/s', RATE_COLOR, 'legend-rate')


def legend(svg, n, label, color, ident):
    lx, ly = WIDTH - RIGHT + 20, LAT_TOP + 10 + 22 * n
    svg.add('<g id="{}"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/>'
            .format(ident, lx, ly, lx + 24, ly, color))
    svg.text(lx + 30, ly + 4, label)
    svg.add('</g>')


def default_title(summary):
    if summary is None:
        return 'echo-bench: latency over time'
    mode = summary.get('mode', '')
    what = 'open loop at {} msg/s'.format(summary['rate']) if mode == 'open' else mode + ' loop'
    return 'echo-bench {}: {} connection(s), {} B, {}'.format(
        summary.get('connect', ''), summary.get('conns', '?'), summary.get('size', '?'), what)


def plot(intervals, summary, title):
    svg = Svg()
    t_end = max(o['t_s'] for o in intervals)
    svg.text(WIDTH / 2, 24, title, 'middle', 15, 'bold')
    x = time_axis(svg, t_end if t_end > 0 else 1.0)
    shade_warmup(svg, intervals, x)
    latency_panel(svg, intervals, x)
    rate_panel(svg, intervals, x)
    return svg.render()


def main():
    ap = argparse.ArgumentParser(description='echo-bench JSON lines to an SVG of latency '
                                 'percentiles and messages/s over time')
    ap.add_argument('input', nargs='?', default='-',
                    help='echo-bench --interval S --json output (default: stdin)')
    ap.add_argument('-o', '--output', default='-', help='the SVG file (default: stdout)')
    ap.add_argument('--title', help='the title (default: from the summary line)')
    args = ap.parse_args()
    try:
        if args.input == '-':
            intervals, summary = read_lines(sys.stdin, 'stdin')
        else:
            with open(args.input) as f:
                intervals, summary = read_lines(f, args.input)
    except OSError as e:
        raise SystemExit('plot.py: {}: {}'.format(args.input, e.strerror))
    svg = plot(intervals, summary, args.title or default_title(summary))
    if args.output == '-':
        sys.stdout.write(svg)
    else:
        with open(args.output, 'w') as f:
            f.write(svg)


if __name__ == '__main__':
    main()
