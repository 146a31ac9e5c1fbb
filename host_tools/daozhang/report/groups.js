// The rows of one group, loaded when the group is opened (groups.py): each page of rows is a
// small script beside the report (REPORT.html.d/<group>-<page>.js) that calls dz.rows().
// A <script> tag, not fetch(): the report is opened as a local file, where Chromium refuses
// fetch() of a neighbour file. Every word in the rows is already in the reader's languages.
(function () {
'use strict';
const DIR = document.body.getAttribute('data-rows');
const cache = {};  // group id -> page -> rows
let open = null;   // {gid, n, pages}
const body = document.querySelector('#problems tbody');
const title = document.getElementById('group-title');
const more = document.getElementById('more');

function text(tag, value, cls) {
  const e = document.createElement(tag);
  e.textContent = value;
  if (cls) e.className = cls;
  return e;
}

function show(rows) {
  for (const r of rows) {
    const tr = document.createElement('tr');
    if (r[15]) tr.className = 'net';
    for (let i = 0; i < 12; i++) tr.appendChild(text('td', r[i], i === 7 || i === 8 ? 'n' : ''));
    const why = document.createElement('td');
    why.appendChild(document.createTextNode(r[12] + ' ' + r[13]));
    const det = document.createElement('details');
    det.appendChild(text('summary', '证据 evidence'));
    const ul = document.createElement('ul');
    for (const e of r[14]) {
      const li = document.createElement('li');
      li.appendChild(text('b', e[0]));
      li.appendChild(document.createTextNode(' ' + e[1]));
      ul.appendChild(li);
    }
    det.appendChild(ul);
    why.appendChild(det);
    tr.appendChild(why);
    body.appendChild(tr);
  }
}

function status() {
  const shown = body.children.length;
  more.hidden = !open || shown >= open.n;
  title.setAttribute('data-shown', String(shown));
  document.getElementById('group-count').textContent = open ?
    `显示 ${shown} / ${open.n} 笔 showing ${shown} of ${open.n}` : '';
}

function load(gid, page) {
  const have = cache[gid] && cache[gid][page];
  if (have) { show(have); status(); return; }
  const s = document.createElement('script');
  s.src = DIR + '/' + gid + '-' + page + '.js';
  s.onload = () => { if (open && open.gid === gid) { show(cache[gid][page] || []); status(); } };
  s.onerror = () => { title.textContent += ' — 无法读取 cannot read ' + s.src; };
  document.head.appendChild(s);
}

window.dz = {
  rows(gid, page, rows) {  // called by each page's script, once or more per page
    cache[gid] = cache[gid] || {};
    cache[gid][page] = (cache[gid][page] || []).concat(rows);
  },
};

for (const tr of document.querySelectorAll('tr.group')) {
  tr.addEventListener('click', () => {
    open = {gid: tr.dataset.gid, n: Number(tr.dataset.n), pages: 1};
    body.textContent = '';
    title.textContent = tr.dataset.title;
    title.setAttribute('data-gid', open.gid);
    load(open.gid, 0);
    title.scrollIntoView();
  });
}
more.addEventListener('click', () => {
  if (!open) return;
  load(open.gid, open.pages);
  open.pages += 1;
});
status();
document.body.setAttribute('data-groups', 'ready');
})();
