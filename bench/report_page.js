/*
 * The ipcx bench report, drawn in the browser from the run's JSON (embedded
 * in the page as <script id="bench-data" type="application/json">).  No
 * network, no library: SVG by hand.  Layout, for reading rather than for
 * completeness:
 *   1. what ipcx costs over the raw system calls (a ratio per mechanism),
 *   2. ipcx against the peer libraries, where a peer was measured,
 *   3. one section per family, a small chart per mechanism with a few lines,
 *   4. the table, sortable by any column.
 * The last lines write what was drawn into #render-check, which the test
 * suite reads back from a headless browser.
 */
'use strict';

var errors = [];
window.addEventListener('error', function (e) { errors.push(String(e.message)); });

var FAMILIES = [
	{ id: 'streams', name: 'Streams and sockets',
	  transports: ['pipe', 'socketpair', 'fifo', 'unix', 'unixpacket', 'unixgram', 'tcp', 'udp', 'nats'] },
	{ id: 'queues', name: 'Message queues and record files', transports: ['mq', 'sysvmq', 'file'] },
	{ id: 'shm', name: 'Shared memory', transports: ['shm', 'sysvshm', 'mmap'] },
	{ id: 'prims', name: 'Primitives', transports: ['sem', 'sysvsem', 'mutex', 'flock', 'eventfd', 'signal'] },
	{ id: 'rpc', name: 'Request/reply (msg/s: calls per second with 64 in flight)',
	  transports: ['rpc-shm', 'rpc-sysvshm', 'rpc-unix', 'rpc-unixpacket', 'rpc-tcp'] },
	{ id: 'pubsub', name: 'Publish/subscribe (one publisher, 1 or 4 subscriber processes; ' +
	  'latency: publish to receive, one message at a time; msg/s: received by each subscriber)',
	  transports: ['pubsub-shm', 'pubsub-shm-drop', 'pubsub-unix'], lat: 'publish to receive, median',
	  thr: 'messages/s per subscriber' }
];
/* Fan-out rows: their latency is one way, not a round trip; no raw baseline. */
function isPubsub(t) { return t.indexOf('pubsub-') === 0; }
/* Anything else (the patterns as they land: rpc, pub/sub, pools, logging). */
var OTHERS = { id: 'others', name: 'Patterns and others', transports: [] };

var IMPL_STYLE = {
	ipcx: { color: '#1f5fbf', dash: '' },
	raw: { color: '#555555', dash: '6,3' },
	zmq: { color: '#d9730d', dash: '2,3' },
	nng: { color: '#2e8b57', dash: '2,3' },
	iceoryx: { color: '#8e44ad', dash: '2,3' }
};
function style(impl) { return IMPL_STYLE[impl] || { color: '#b03060', dash: '4,2' }; }

var SVGNS = 'http://www.w3.org/2000/svg';
function el(name, attrs, parent, text) {
	var e = document.createElementNS(SVGNS, name);
	for (var k in attrs) e.setAttribute(k, attrs[k]);
	if (text !== undefined) e.textContent = text;
	if (parent) parent.appendChild(e);
	return e;
}
function h(tag, text, parent, cls) {
	var e = document.createElement(tag);
	if (text !== undefined) e.textContent = text;
	if (cls) e.className = cls;
	if (parent) parent.appendChild(e);
	return e;
}

function fmtNs(ns) {
	if (ns < 1e3) return Math.round(ns) + ' ns';
	if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 1 : 0) + ' µs';
	if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + ' ms';
	return (ns / 1e9).toFixed(2) + ' s';
}
function fmtRate(v) {
	if (v >= 1e9) return (v / 1e9).toFixed(2) + 'G';
	if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
	if (v >= 1e3) return (v / 1e3).toFixed(1) + 'k';
	return v.toFixed(0);
}
function fmtSize(n) {
	if (n >= 1048576 && n % 1048576 === 0) return (n / 1048576) + ' MiB';
	if (n >= 1024 && n % 1024 === 0) return (n / 1024) + ' KiB';
	return n + ' B';
}
function fmtRatio(r) { return r >= 10 ? r.toFixed(0) + '×' : r.toFixed(2) + '×'; }

/* ---- the data ------------------------------------------------------------------ */

var data = JSON.parse(document.getElementById('bench-data').textContent);
var results = data.results || [];
var sizes = (data.env.sizes || []).slice().sort(function (a, b) { return a - b; });
var smallest = sizes[0], largest = sizes[sizes.length - 1];

function key(r) { return r.transport + '/' + r.impl + '/' + r.mode; }
/* Mechanisms (transport, impl, mode) in the order they ran. */
var mechs = [], byKey = {};
results.forEach(function (r) {
	var k = key(r);
	if (!byKey[k]) {
		byKey[k] = { transport: r.transport, impl: r.impl, mode: r.mode, rows: {}, prim: r.size === 0 };
		mechs.push(byKey[k]);
	}
	byKey[k].rows[r.size] = r;
});
function rtt(m, size) { var r = m.rows[size]; return r && r.rtt_ns ? r.rtt_ns.p50 : null; }
function rate(m, size) { var r = m.rows[size]; return r && r.msgs_per_s ? r.msgs_per_s : null; }
function bps(m, size) { var r = m.rows[size]; return r && r.bytes_per_s ? r.bytes_per_s : null; }
function transports() {
	var seen = [], out = [];
	mechs.forEach(function (m) { if (seen.indexOf(m.transport) < 0) { seen.push(m.transport); out.push(m.transport); } });
	return out;
}
function familyOf(t) {
	for (var i = 0; i < FAMILIES.length; i++)
		if (FAMILIES[i].transports.indexOf(t) >= 0) return FAMILIES[i];
	return OTHERS;
}
function mechsOf(t) { return mechs.filter(function (m) { return m.transport === t; }); }

/* ---- charts ---------------------------------------------------------------------- */

var charts = [];  /* { id, marks } for the render check */

function chartBox(parent, id, title, w, hgt) {
	var fig = h('figure', undefined, parent, 'chart-box');
	h('figcaption', title, fig);
	var svg = el('svg', { class: 'chart', id: id, width: w, height: hgt, viewBox: '0 0 ' + w + ' ' + hgt }, null);
	fig.appendChild(svg);
	var c = { id: id, marks: 0 };
	charts.push(c);
	return { svg: svg, rec: c };
}
function logTicks(lo, hi) {
	var t = [];
	for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) t.push(Math.pow(10, e));
	return t;
}

/*
 * A small log-log chart of one mechanism's implementations against message
 * size: y = median round trip (ns) or one-way messages/s.
 */
function sizeChart(parent, id, title, ms, get, fmt) {
	var W = 322, H = 190, L = 56, R = 90, T = 8, B = 30;  /* the legend on the right */
	var box = chartBox(parent, id, title, W, H), svg = box.svg;
	var pts = [], lo = Infinity, hi = 0;
	ms.forEach(function (m) {
		var p = [];
		sizes.forEach(function (s) { var v = get(m, s); if (v > 0) { p.push([s, v]); lo = Math.min(lo, v); hi = Math.max(hi, v); } });
		if (p.length) pts.push({ m: m, p: p });
	});
	el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: '#fafafa', stroke: '#999' }, svg);
	if (!pts.length) { el('text', { x: L + 10, y: T + 30, 'font-size': 12 }, svg, 'no data'); return; }
	var ticks = logTicks(lo, hi), y0 = Math.log10(ticks[0]), y1 = Math.log10(ticks[ticks.length - 1]);
	if (y1 <= y0) y1 = y0 + 1;
	var x0 = Math.log2(sizes[0]), x1 = Math.log2(sizes[sizes.length - 1]);
	if (x1 <= x0) { x0 -= 1; x1 += 1; }
	function X(s) { return L + (Math.log2(s) - x0) / (x1 - x0) * (W - L - R); }
	function Y(v) { return T + (H - T - B) - (Math.log10(v) - y0) / (y1 - y0) * (H - T - B); }
	ticks.forEach(function (v) {
		el('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: '#e2e2e2' }, svg);
		el('text', { x: L - 3, y: Y(v) + 4, 'font-size': 10, 'text-anchor': 'end' }, svg, fmt(v));
	});
	var last = sizes.length - 1;
	sizes.forEach(function (s, i) {
		/* Many sizes: every other label, the last always, none crowding it. */
		if (sizes.length > 5 && i !== last && (i % 2 || i === last - 1)) return;
		el('text', { x: X(s), y: H - B + 13, 'font-size': 10, 'text-anchor': 'middle' }, svg, fmtSize(s));
	});
	pts.forEach(function (sr, i) {
		var st = style(sr.m.impl), g = el('g', { class: 'series', 'data-name': key(sr.m) }, svg);
		/* Fan-out: the same library with 4 subscribers draws long dashes. */
		if (/^4 sub/.test(sr.m.mode)) st = { color: st.color, dash: '8,3' };
		el('polyline', { fill: 'none', stroke: st.color, 'stroke-width': 2, 'stroke-dasharray': st.dash,
			points: sr.p.map(function (q) { return X(q[0]).toFixed(1) + ',' + Y(q[1]).toFixed(1); }).join(' ') }, g);
		sr.p.forEach(function (q) {
			el('circle', { class: 'mark', cx: X(q[0]), cy: Y(q[1]), r: 2.5, fill: st.color }, g)
				.appendChild(el('title', {}, null, sr.m.impl + ' ' + sr.m.mode + ', ' + fmtSize(q[0]) + ': ' + fmt(q[1])));
			box.rec.marks++;
		});
		var lx = W - R + 6, ly = T + 12 + 12 * i;
		el('line', { x1: lx, x2: lx + 16, y1: ly - 3, y2: ly - 3, stroke: st.color, 'stroke-width': 2, 'stroke-dasharray': st.dash }, g);
		el('text', { x: lx + 19, y: ly, 'font-size': 10 }, g, (sr.m.impl + (sr.m.mode !== 'blocking' ? ' ' + sr.m.mode : '')).slice(0, 14));
	});
}

/*
 * Horizontal bars on a log scale.  rows: [{ label, bars: [{ name, value, color, text }] }].
 * With ref (1 for ratios) the bars grow from ref, left for below, right for above.
 */
function barChart(parent, id, title, rows, opts) {
	var nb = 0;
	rows.forEach(function (r) { nb += r.bars.length; });
	var W = 640, L = 150, R = 80, T = 22, BH = 12, GAP = 8;
	var H = T + nb * BH + rows.length * GAP + 24;
	var box = chartBox(parent, id, title, W, H), svg = box.svg;
	if (!nb) { el('text', { x: L, y: T + 12, 'font-size': 12 }, svg, 'no data'); return; }
	var lo = Infinity, hi = 0;
	rows.forEach(function (r) { r.bars.forEach(function (b) { lo = Math.min(lo, b.value); hi = Math.max(hi, b.value); }); });
	if (opts.ref) { lo = Math.min(lo, opts.ref / 1.5); hi = Math.max(hi, opts.ref * 1.5); }
	var ticks = logTicks(lo, hi), v0 = Math.log10(ticks[0]), v1 = Math.log10(ticks[ticks.length - 1]);
	if (v1 <= v0) v1 = v0 + 1;
	function X(v) { return L + (Math.log10(v) - v0) / (v1 - v0) * (W - L - R); }
	ticks.forEach(function (v) {
		el('line', { x1: X(v), x2: X(v), y1: T - 4, y2: H - 20, stroke: '#e2e2e2' }, svg);
		el('text', { x: X(v), y: H - 6, 'font-size': 10, 'text-anchor': 'middle' }, svg, opts.fmt(v));
	});
	var base = opts.ref ? X(opts.ref) : L;
	if (opts.ref) el('line', { x1: base, x2: base, y1: T - 8, y2: H - 20, stroke: '#000' }, svg);
	if (opts.legend) opts.legend.forEach(function (lg, i) {
		el('rect', { x: L + i * 150, y: 4, width: 10, height: 10, fill: lg.color }, svg);
		el('text', { x: L + i * 150 + 14, y: 13, 'font-size': 11 }, svg, lg.name);
	});
	var y = T;
	rows.forEach(function (r) {
		el('text', { x: L - 6, y: y + BH * r.bars.length / 2 + 4, 'font-size': 11, 'text-anchor': 'end' }, svg, r.label);
		r.bars.forEach(function (b) {
			var x = X(b.value), g = el('g', { class: 'series', 'data-name': r.label + ' ' + b.name }, svg);
			el('rect', { class: 'mark', x: Math.min(base, x), y: y, width: Math.max(1, Math.abs(x - base)), height: BH - 2, fill: b.color }, g)
				.appendChild(el('title', {}, null, r.label + ', ' + b.name + ': ' + b.text));
			el('text', { x: Math.max(base, x) + 3, y: y + BH - 3, 'font-size': 9 }, g, b.text);
			box.rec.marks++;
			y += BH;
		});
		y += GAP;
	});
}

/* ---- 1. ipcx over the raw system calls --------------------------------------------- */

/*
 * Cost = ipcx's time over the raw calls' time: round trip p50 / p50, and for
 * streams the time per message (1 / rate).  Above 1: ipcx is slower.  Where
 * the raw calls ran in several modes (a spinning and a sleeping ring), the
 * fastest is the baseline.
 */
function best(ms, get, size, lower) {
	var b = null;
	ms.forEach(function (m) { var v = get(m, size); if (v > 0 && (b === null || (lower ? v < b : v > b))) b = v; });
	return b;
}
function costRows(get, lower) {
	var rows = [];
	transports().forEach(function (t) {
		var ms = mechsOf(t), ip = ms.filter(function (m) { return m.impl === 'ipcx'; }),
			raw = ms.filter(function (m) { return m.impl === 'raw'; });
		if (!ip.length || !raw.length) return;
		var bars = [];
		var at = ms[0].prim ? [0] : [smallest, largest].filter(function (s, i, a) { return a.indexOf(s) === i; });
		at.forEach(function (s, i) {
			var a = best(ip, get, s, lower), b = best(raw, get, s, lower);
			if (!(a > 0 && b > 0)) return;
			var r = lower ? a / b : b / a;
			bars.push({ name: s ? fmtSize(s) : 'hand-off', value: r, color: i ? '#7fa7e0' : '#1f5fbf', text: fmtRatio(r) });
		});
		if (bars.length) rows.push({ label: t, bars: bars });
	});
	return rows;
}

/* ---- 2. ipcx against the peers ------------------------------------------------------- */

function peerRows(get, fmt, lower) {
	var rows = [];
	transports().forEach(function (t) {
		var ms = mechsOf(t);
		if (isPubsub(t) || !ms.some(function (m) { return m.impl !== 'ipcx' && m.impl !== 'raw'; })) return;
		var bars = [];
		ms.forEach(function (m) {
			var v = get(m, smallest);
			if (v > 0) bars.push({ name: m.impl + ' ' + m.mode, value: v, color: style(m.impl).color,
				text: m.impl + (m.mode !== 'blocking' ? ' ' + m.mode : '') + ': ' + fmt(v) });
		});
		if (bars.length) rows.push({ label: t, bars: bars });
	});
	return rows;
}

/* ---- 4. the table ------------------------------------------------------------------ */

function largestOk(m) {
	var s = Object.keys(m.rows).map(Number).sort(function (a, b) { return b - a; });
	return s.length ? s[0] : null;
}
function table(parent) {
	var cols = [
		{ name: 'mechanism', v: function (m) { return m.transport; } },
		{ name: 'impl', v: function (m) { return m.impl; } },
		{ name: 'mode', v: function (m) { return m.mode; } },
		{ name: 'RTT p50', n: true, v: function (m) { var r = m.rows[m.prim ? 0 : smallest]; return r && r.rtt_ns ? r.rtt_ns.p50 : null; }, f: fmtNs },
		{ name: 'p99', n: true, v: function (m) { var r = m.rows[m.prim ? 0 : smallest]; return r && r.rtt_ns ? r.rtt_ns.p99 : null; }, f: fmtNs },
		{ name: 'p99.9', n: true, v: function (m) { var r = m.rows[m.prim ? 0 : smallest]; return r && r.rtt_ns ? r.rtt_ns.p999 : null; }, f: fmtNs },
		{ name: 'msg/s @' + fmtSize(smallest), n: true, v: function (m) { var r = m.rows[m.prim ? 0 : smallest]; return r ? (r.msgs_per_s || r.ops_per_s || null) : null; }, f: fmtRate },
		{ name: 'B/s @' + fmtSize(largest), n: true, v: function (m) { return m.prim ? null : bps(m, largest); }, f: function (v) { return fmtRate(v) + 'B/s'; } },
		{ name: 'largest ok', n: true, v: function (m) { return m.prim ? null : largestOk(m); }, f: fmtSize }
	];
	var t = h('table', undefined, parent, 'results'), thead = h('thead', undefined, t), tr = h('tr', undefined, thead);
	var tbody = h('tbody', undefined, t);
	mechs.forEach(function (m) {
		var row = h('tr', undefined, tbody);
		cols.forEach(function (c) {
			var v = c.v(m), td = h('td', v === null ? '–' : c.f ? c.f(v) : v, row, c.n ? 'num' : '');
			td.dataset.v = v === null ? '' : v;
		});
	});
	cols.forEach(function (c, i) {
		var th = h('th', c.name, tr);
		th.title = 'sort';
		th.addEventListener('click', function () {
			var dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
			Array.prototype.forEach.call(tr.children, function (x) { delete x.dataset.dir; });
			th.dataset.dir = dir;
			var rows = Array.prototype.slice.call(tbody.rows);
			rows.sort(function (a, b) {
				var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v;
				if (x === '' || y === '') return x === y ? 0 : x === '' ? 1 : -1;  /* blanks last */
				var r = c.n ? Number(x) - Number(y) : x.localeCompare(y);
				return dir === 'asc' ? r : -r;
			});
			rows.forEach(function (r) { tbody.appendChild(r); });
		});
	});
}

/* ---- the page ------------------------------------------------------------------------ */

function section(title, intro) {
	var s = h('section', undefined, document.getElementById('report'));
	h('h2', title, s);
	if (intro) h('p', intro, s);
	return s;
}

(function draw() {
	var s1 = section('What ipcx costs over the raw system calls',
		'ipcx\'s time over the raw calls\' time for the same mechanism, at ' + fmtSize(smallest) +
		' and ' + fmtSize(largest) + ' (primitives: one hand-off). Left of the line ipcx is faster, right of it slower. ' +
		'Where the raw calls ran in several modes, the fastest is the baseline.');
	var box = h('div', undefined, s1, 'row');
	var lg = [{ name: fmtSize(smallest), color: '#1f5fbf' }, { name: fmtSize(largest), color: '#7fa7e0' }];
	barChart(box, 'cost-rtt', 'round trip, median', costRows(rtt, true), { ref: 1, fmt: fmtRatio, legend: lg });
	barChart(box, 'cost-stream', 'one-way stream, time per message', costRows(rate, false), { ref: 1, fmt: fmtRatio, legend: lg });

	var peers = peerRows(rtt, fmtNs, true);
	if (peers.length) {
		var s2 = section('ipcx against the peer libraries',
			'The same mechanism driven by ipcx, the raw calls and the libraries people pick instead, at ' + fmtSize(smallest) + '.');
		var b2 = h('div', undefined, s2, 'row');
		barChart(b2, 'peers-rtt', 'round trip, median (shorter is better)', peers, { fmt: fmtNs });
		barChart(b2, 'peers-stream', 'one-way messages per second (longer is better)', peerRows(rate, fmtRate, false), { fmt: fmtRate });
	}

	FAMILIES.concat([OTHERS]).forEach(function (fam) {
		var ts = transports().filter(function (t) { return familyOf(t) === fam; });
		if (!ts.length) return;
		var s = section(fam.name);
		if (fam.id === 'prims') {
			var rows = ts.map(function (t) {
				return { label: t, bars: mechsOf(t).filter(function (m) { return rtt(m, 0) > 0; }).map(function (m) {
					var v = rtt(m, 0);
					return { name: m.impl + ' ' + m.mode, value: v, color: style(m.impl).color, text: m.impl + ' ' + m.mode + ': ' + fmtNs(v) };
				}) };
			});
			barChart(s, 'fam-prims', 'hand-off there and back, or one lock+unlock: median', rows, { fmt: fmtNs });
			return;
		}
		/* Measured once, at no size (the log rows): bars, not curves over sizes. */
		var once = function (t) { return mechsOf(t).every(function (m) { return m.prim; }); };
		ts.filter(once).forEach(function (t) {
			var bars = function (get, fmt) {
				return [{ label: t, bars: mechsOf(t).filter(function (m) { return get(m, 0) > 0; }).map(function (m) {
					var v = get(m, 0);
					return { name: m.impl + ' ' + m.mode, value: v, color: style(m.impl).color, text: m.impl + ' ' + m.mode + ': ' + fmt(v) };
				}) }];
			};
			var b = h('div', undefined, s, 'row');
			barChart(b, 'once-lat-' + t, t + ': one call, median (shorter is better)', bars(rtt, fmtNs), { fmt: fmtNs });
			barChart(b, 'once-thr-' + t, t + ': per second, end to end (longer is better)', bars(rate, fmtRate), { fmt: fmtRate });
		});
		var grid = h('div', undefined, s, 'grid');
		ts.filter(function (t) { return !once(t); }).forEach(function (t) {
			var cell = h('div', undefined, grid, 'cell');
			h('h3', t, cell);
			sizeChart(cell, 'lat-' + t, fam.lat || 'round trip, median', mechsOf(t), rtt, fmtNs);
			sizeChart(cell, 'thr-' + t, fam.thr || 'one-way messages/s', mechsOf(t), rate, fmtRate);
		});
	});

	table(section('All results', 'Click a column to sort. Round trips and msg/s at ' + fmtSize(smallest) +
		', bandwidth at ' + fmtSize(largest) + '; the JSON file has every size.'));

	/* What the test suite checks: every chart drew data, and no script failed. */
	var empty = charts.filter(function (c) { return c.marks === 0; }).map(function (c) { return c.id; });
	document.getElementById('render-check').textContent = JSON.stringify({
		charts: charts.length, marks: charts.reduce(function (a, c) { return a + c.marks; }, 0),
		empty: empty, errors: errors });
})();
