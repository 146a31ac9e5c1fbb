// Draws each device's timeline from the report's JSON (html.py, timeline.py). Every word and
// every time it shows was written in Python; this script only turns times into positions.
(function(){
const D = JSON.parse(document.getElementById('dz-data').textContent);
const NS = 'http://www.w3.org/2000/svg';
const W = 1120, L = 170, R = 16;              // plot from x = L to x = W - R
const TOP = 4, BOTTOM = 198, H = 220;         // plot from y = TOP to y = BOTTOM, axis below
const LINK = [8, 16], SIG = [32, 96];         // link strip (y, height); signal area (y0, y1)
const DBM = [-125, -45];                      // the signal scale, bottom to top
const CAPTURED = 120, UPLOADED = 153, ROW = 186;
const LANE_Y = [16, 56, CAPTURED, UPLOADED, ROW];

function el(name, attrs, parent, tip){
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (tip){ const t = document.createElementNS(NS, 'title'); t.textContent = tip; e.appendChild(t); }
  parent.appendChild(e); return e;
}
function text(parent, x, y, s, attrs){
  el('text', Object.assign({x: x, y: y}, attrs || {}), parent).textContent = s;
}
const sigY = v => SIG[1] - (SIG[1] - SIG[0]) *
  (Math.min(DBM[1], Math.max(DBM[0], v)) - DBM[0]) / (DBM[1] - DBM[0]);

const box = document.getElementById('timelines');
D.devices.forEach((d, n) => {
  const x = t => L + (W - L - R) * (t - d.t0) / Math.max(1, d.t1 - d.t0);
  const clamp = t => Math.min(W - R, Math.max(L, x(t)));
  const div = document.createElement('div'); div.className = 'dev';
  const head = document.createElement('p'); head.className = 'head';
  d.head.forEach((part, i) => {
    const s = document.createElement(i ? 'span' : 'b'); s.textContent = part; head.appendChild(s);
  });
  div.appendChild(head);
  const svg = el('svg', {'class': 'timeline', 'data-dev': d.dev, 'data-t0': d.t0,
                         'data-t1': d.t1, width: W, height: H}, div);
  const clip = 'dz-clip-' + n;
  el('rect', {x: L, y: TOP, width: W - L - R, height: BOTTOM - TOP},
     el('clipPath', {id: clip}, el('defs', {}, svg)));
  el('rect', {'class': 'plot', x: L, y: TOP, width: W - L - R, height: BOTTOM - TOP,
              fill: '#fcfcfc', stroke: '#e3e3e3'}, svg);
  const plot = el('g', {'clip-path': 'url(#' + clip + ')'}, svg);

  // Lane names: Chinese, then English under it.
  D.lanes.forEach(([zh, en], i) => {
    text(svg, 4, LANE_Y[i] - 1, zh, {'class': 'lane', 'font-size': 12});
    text(svg, 4, LANE_Y[i] + 11, en, {'class': 'lane-en', 'font-size': 10, fill: '#666'});
  });
  if (d.signal) text(svg, 4, LANE_Y[1] + 23, d.signal.label, {'font-size': 10, fill: '#666'});

  // Hours (Beijing time).
  for (const [t, label] of d.ticks){
    el('line', {x1: x(t), x2: x(t), y1: TOP, y2: BOTTOM + 4, stroke: '#ececec'}, plot);
    if (t >= d.t0 && t <= d.t1)
      text(svg, x(t), H - 6, label, {'class': 'tick', 'font-size': 10, fill: '#777',
                                     'text-anchor': 'middle'});
  }

  // Outages first, so that they lie under everything else: a pale band across every lane
  // (the sales they broke sit on it) and a solid strip in the link lane.
  el('rect', {x: L, y: LINK[0], width: W - L - R, height: LINK[1], fill: '#dcefdc'}, plot,
     '无断网记录 no outage journalled');
  for (const [s, e, colour, stage, tip] of d.outages){
    const x0 = x(s), w = Math.max(2, x(e) - x0);
    el('rect', {'class': 'outage-band', 'data-stage': stage, x: x0, y: TOP, width: w,
                height: BOTTOM - TOP, fill: colour, 'fill-opacity': 0.22}, plot, tip);
    el('rect', {'class': 'outage', 'data-stage': stage, x: x0, y: LINK[0], width: w,
                height: LINK[1], fill: colour}, plot, tip);
  }

  // Signal: the dBm scale, then a step line (a reading holds until the next one).
  for (let v = -120; v <= -60; v += 20){
    el('line', {x1: L, x2: W - R, y1: sigY(v), y2: sigY(v), stroke: '#eee'}, svg);
    text(svg, L - 3, sigY(v) + 3, String(v), {'font-size': 9, fill: '#999', 'text-anchor': 'end'});
  }
  if (d.signal){
    const p = d.signal.points, pts = [];
    p.forEach(([t, v], i) => {
      if (i) pts.push(x(t).toFixed(1) + ',' + sigY(p[i - 1][1]).toFixed(1));
      pts.push(x(t).toFixed(1) + ',' + sigY(v).toFixed(1));
    });
    pts.push(x(Math.max(d.signal.end, p[p.length - 1][0])).toFixed(1) + ',' +
             sigY(p[p.length - 1][1]).toFixed(1));
    el('polyline', {'class': 'signal', points: pts.join(' '), fill: 'none', stroke: '#333',
                    'stroke-width': 1.5}, plot, '信号 signal ' + d.signal.label);
  }

  // Transactions: captured → uploaded → settlement row, joined by a thin line.
  for (const t of d.txns){
    const xs = [[x(t.lt), CAPTURED]];
    if (t.up !== undefined) xs.push([clamp(t.up), UPLOADED]);
    if (t.row !== undefined) xs.push([clamp(t.row), ROW]);
    el('polyline', {points: xs.map(p => p.join(',')).join(' '), fill: 'none', stroke: '#ccc'}, plot);
    if (t.net)  // a sale lost to the network points up at the link it lost
      el('line', {'class': 'netlink', x1: x(t.lt), x2: x(t.lt), y1: LINK[0] + LINK[1],
                  y2: CAPTURED - 7, stroke: '#d62728', 'stroke-dasharray': '3 2'}, plot);
    if (t.up !== undefined){
      const late = t.up > d.t1;  // received after the span: an arrow at the edge, time in the tip
      el(late ? 'path' : 'circle', late
         ? {'class': 'uploaded offscale', 'data-trc': t.trc, fill: '#5bc0de',
            d: `M${W - R - 8},${UPLOADED - 5} l8,5 l-8,5 z`}
         : {'class': 'uploaded', 'data-trc': t.trc, cx: x(t.up), cy: UPLOADED, r: 3,
            fill: '#5bc0de'}, plot, t.up_tip);
    }
    if (t.row !== undefined)
      el('circle', {'class': 'row', 'data-trc': t.trc, cx: clamp(t.row), cy: ROW, r: 3,
                    fill: t.row_ok ? '#59a14f' : '#fff', stroke: t.row_ok ? '#59a14f' : '#777'},
         plot, t.row_tip);
    const cx = x(t.lt), attrs = {'data-trc': t.trc, 'data-network': t.net ? '1' : '0',
                                 'data-status': t.status};
    if (t.net){
      el('path', Object.assign({'class': 'sale captured net', fill: '#d62728', stroke: '#000',
        d: `M${cx},${CAPTURED - 7} l7,7 l-7,7 l-7,-7 z`}, attrs), plot, t.tip);
    } else {
      const fill = !t.have ? '#fff' : {gap: '#d62728', settled_short: '#f0ad4e',
                                       pending: '#4e79a7'}[t.status] || '#555';
      el('circle', Object.assign({'class': 'sale captured', cx: cx, cy: CAPTURED,
        r: t.status === 'gap' ? 5 : 3.5, fill: fill, stroke: t.status === 'gap' ? '#900' : '#555'},
        attrs), plot, t.tip);
    }
  }
  box.appendChild(div);
});
const f = document.getElementById('filter');
f.addEventListener('input', () => {
  for (const tr of document.querySelectorAll('#problems tbody tr'))
    tr.style.display = tr.textContent.toLowerCase().includes(f.value.toLowerCase()) ? '' : 'none';
});
document.body.setAttribute('data-rendered', String(D.devices.length));
})();
