(function(){
const D = JSON.parse(document.getElementById('dz-data').textContent);
const NS = 'http://www.w3.org/2000/svg';
const W = 1100, L = 90, R = 10, H = 170;
const x = t => L + (W - L - R) * Math.min(1, Math.max(0, (t - D.t0) / Math.max(1, D.t1 - D.t0)));
function el(name, attrs, parent, title){
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (title){ const t = document.createElementNS(NS, 'title'); t.textContent = title; e.appendChild(t); }
  parent.appendChild(e); return e;
}
const fmt = t => new Date(t * 1000 + 8 * 3600e3).toISOString().slice(5, 16).replace('T', ' ');
const box = document.getElementById('timelines');
for (const d of D.devices){
  const div = document.createElement('div'); div.className = 'dev';
  div.innerHTML = '<b>' + d.dev + '</b> merchant ' + d.mid + ' terminal ' + d.tid +
                  ' — missing ¥' + d.missing;
  const svg = el('svg', {'class': 'timeline', 'data-dev': d.dev, width: W, height: H}, div);
  [['link', 18], ['signal', 55], ['captured', 95], ['uploaded', 120], ['settled', 145]]
    .forEach(([n, y]) => el('text', {x: 4, y: y + 4, 'font-size': 11}, svg).textContent = n);
  el('rect', {x: L, y: 10, width: W - L - R, height: 16, fill: '#8fd19e'}, svg, 'link up');
  for (const o of d.outages){
    el('rect', {'class': 'down', x: x(o[0]), y: 10, width: Math.max(2, x(o[1]) - x(o[0])),
                height: 16, fill: '#d9534f'}, svg,
       'link down ' + fmt(o[0]) + ' → ' + fmt(o[1]) + ' stage ' + o[2] + ' (' + o[3] + ')');
  }
  const pts = d.signal.filter(s => s[1] !== null)
    .map(s => x(s[0]).toFixed(1) + ',' + (75 - (s[1] + 120) * 0.55).toFixed(1));
  if (pts.length) el('polyline', {'class': 'signal', points: pts.join(' '), fill: 'none',
                                  stroke: '#337ab7'}, svg, 'RSSI dBm');
  for (let day = Math.ceil((D.t0 + 8 * 3600) / 86400) * 86400 - 8 * 3600; day < D.t1; day += 86400){
    el('line', {x1: x(day), x2: x(day), y1: 8, y2: H - 10, stroke: '#eee'}, svg);
    el('text', {x: x(day) + 2, y: H - 2, 'font-size': 10, fill: '#888'}, svg).textContent = fmt(day).slice(0, 5);
  }
  for (const t of d.txns){
    if (!t.lt) continue;
    const bad = t.status === 'gap', short = t.status === 'settled_short';
    const tip = 'trace ' + t.trc + ' ¥' + t.yuan + ' ' + t.status + (t.cause ? ' / ' + t.cause : '') +
                (t.data !== 'complete' ? ' [' + t.data + ']' : '');
    if (t.up){
      el('line', {x1: x(t.lt), y1: 95, x2: x(t.up), y2: 120, stroke: '#bbb'}, svg);
      el('circle', {cx: x(t.up), cy: 120, r: 2.5, fill: '#5bc0de'}, svg, 'uploaded ' + fmt(t.up));
    }
    if (t.settled){
      el('circle', {cx: x(Math.min(t.settled, D.t1)), cy: 145, r: 2.5, fill: '#5cb85c'}, svg, 'settled ' + tip);
    }
    el('circle', {'class': bad ? 'gap' : (short ? 'short' : 'ok'), cx: x(t.lt), cy: 95,
                  r: bad ? 5 : (short ? 3.5 : 2.5),
                  fill: bad ? '#d9534f' : (short ? '#f0ad4e' : (t.data !== 'complete' ? '#fff' : '#555')),
                  stroke: bad ? '#900' : '#555'}, svg, fmt(t.lt) + ' ' + tip);
  }
  box.appendChild(div);
}
const f = document.getElementById('filter');
f.addEventListener('input', () => {
  for (const tr of document.querySelectorAll('#problems tbody tr'))
    tr.style.display = tr.textContent.toLowerCase().includes(f.value.toLowerCase()) ? '' : 'none';
});
document.body.setAttribute('data-rendered', String(D.devices.length));
})();
