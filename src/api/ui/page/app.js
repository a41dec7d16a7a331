// The cgroup lab's page: the container list, live charts of the selected container (from its
// stats stream, limits from inspect), oom/pressure events as vertical markers, and controls that
// call update. Every call goes to /api on this listener, which passes only these calls on to
// the daemon. Plain JS and uPlot; the charts' latest values are also written to data-
// attributes (data-last-<series>, data-peak-<series>, data-markers, data-oom) for tests and tools.
'use strict';
(() => {
  const WINDOW_S = 180; // the charts show the last three minutes
  const MiB = 1024 * 1024;
  const $ = (sel) => document.querySelector(sel);
  const state = { list: [], selected: null, limits: null, ncpu: 0, histories: new Map(), events: [], seen: new Set(), stream: null };

  // ---- the API through this listener ----
  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    if (method === 'POST') init.headers['X-Skiff-UI'] = '1';
    const r = await fetch(`api${path}`, init);
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!r.ok) throw new Error((json && json.message) || text || `HTTP ${r.status}`);
    return json;
  }

  /** Calls onLine with each JSON line of a streaming GET until it ends or is aborted. */
  async function streamLines(path, signal, onLine) {
    const r = await fetch(`api${path}`, { signal });
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) onLine(JSON.parse(line));
      }
    }
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const nowS = () => Date.now() / 1000;
  const connected = (ok, text) => {
    $('#conn').dataset.state = ok ? 'ok' : 'error';
    $('#conn').textContent = text;
  };

  // ---- the container list ----
  async function refreshList() {
    try {
      state.list = await api('GET', '/containers/json?all=1');
      connected(true, 'connected');
    } catch (e) {
      connected(false, `daemon: ${e.message}`);
      return;
    }
    const shown = JSON.stringify(state.list.map((c) => [c.Id, c.Names, c.State]));
    if (shown === state.shown) return;
    state.shown = shown;
    const ul = $('#containers');
    ul.replaceChildren(
      ...state.list.map((c) => {
        const li = document.createElement('li');
        const name = (c.Names[0] || c.Id).replace(/^\//, '');
        li.dataset.id = c.Id;
        li.dataset.name = name;
        li.dataset.state = c.State;
        li.setAttribute('aria-selected', String(c.Id === state.selected));
        const st = document.createElement('span');
        st.className = 'state';
        st.textContent = c.State;
        li.append(name, st);
        li.addEventListener('click', () => select(c.Id));
        return li;
      }),
    );
  }

  const isRunning = (id) => ['running', 'paused'].includes(state.list.find((c) => c.Id === id)?.State);

  // ---- one container's history: parallel arrays over the sample times ----
  function history(id) {
    let h = state.histories.get(id);
    if (!h) {
      h = { t: [], cols: new Map(), prev: null };
      state.histories.set(id, h);
    }
    return h;
  }

  /** Appends a sample: each column gets its value (null where it has none), new columns are null before. */
  function append(h, t, values) {
    for (const [k, v] of Object.entries(values)) if (!h.cols.has(k)) h.cols.set(k, new Array(h.t.length).fill(null));
    h.t.push(t);
    for (const [k, col] of h.cols) col.push(values[k] ?? null);
    while (h.t.length && h.t[0] < t - WINDOW_S) {
      h.t.shift();
      for (const col of h.cols.values()) col.shift();
    }
  }

  /** The limits from inspect, in the charts' units (null: none). */
  function limitsOf(hc) {
    const quota = hc.NanoCpus > 0 ? hc.NanoCpus / 1e7 : hc.CpuQuota > 0 ? (hc.CpuQuota / (hc.CpuPeriod || 100000)) * 100 : null;
    return {
      quota,
      memLimit: hc.Memory > 0 ? hc.Memory / MiB : null,
      memRes: hc.MemoryReservation > 0 ? hc.MemoryReservation / MiB : null,
      pidsLimit: hc.PidsLimit > 0 ? hc.PidsLimit : null,
    };
  }

  /** One stats object into the history: rates from the previous one (Docker's CPU % as docker stats computes it). */
  function addSample(h, s) {
    const t = Date.parse(s.read) / 1000;
    const prev = h.prev;
    h.prev = s;
    if (s.cpu_stats?.online_cpus && s.cpu_stats.online_cpus !== state.ncpu) {
      state.ncpu = s.cpu_stats.online_cpus;
      $('#cpu-slider').max = String(state.ncpu * 1000);
    }
    const v = {};
    const cpu = s.cpu_stats?.cpu_usage?.total_usage;
    const pcpu = s.precpu_stats?.cpu_usage?.total_usage;
    const sys = s.cpu_stats?.system_cpu_usage;
    const psys = s.precpu_stats?.system_cpu_usage;
    v.cpu = pcpu !== undefined && psys && sys > psys ? ((cpu - pcpu) / (sys - psys)) * (s.cpu_stats.online_cpus || 1) * 100 : null;
    const th = s.cpu_stats?.throttling_data;
    const pth = s.precpu_stats?.throttling_data;
    v.throttled = th && pth && th.periods > pth.periods ? ((th.throttled_periods - pth.throttled_periods) / (th.periods - pth.periods)) * 100 : null;
    const m = s.memory_stats || {};
    if (m.usage !== undefined) v.mem = (m.usage - (m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0)) / MiB;
    if (s.pids_stats?.current !== undefined) v.pids = s.pids_stats.current;
    const lim = state.limits && state.limits.id === h.id ? state.limits : null;
    if (lim) Object.assign(v, { quota: lim.quota, memLimit: lim.memLimit, memRes: lim.memRes, pidsLimit: lim.pidsLimit });
    const dt = prev ? t - Date.parse(prev.read) / 1000 : 0;
    for (const e of s.blkio_stats?.io_service_bytes_recursive || []) {
      const key = `io ${e.major}:${e.minor} ${e.op}`;
      const before = (prev?.blkio_stats?.io_service_bytes_recursive || []).find((p) => p.major === e.major && p.minor === e.minor && p.op === e.op);
      v[key] = before && dt > 0 ? Math.max(0, e.value - before.value) / dt / 1024 : null;
    }
    for (const [res, p] of Object.entries(s.skiff_pressure || {})) for (const kind of ['some', 'full']) if (p[kind]) v[`psi ${res} ${kind}`] = p[kind].avg10;
    append(h, t, v);
  }

  // ---- the selected container: inspect, stats stream ----
  async function refreshLimits(id, setControls) {
    const c = await api('GET', `/containers/${id}/json`);
    if (state.selected !== id) return;
    state.limits = { id, ...limitsOf(c.HostConfig) };
    state.hostConfig = c.HostConfig;
    $('#title').textContent = `${c.Name.replace(/^\//, '')} · ${c.State.Status}${c.State.OOMKilled ? ' · OOM killed' : ''}`;
    if (setControls) controlsFrom(c.HostConfig);
  }

  async function followStats(id, signal) {
    const h = history(id);
    h.id = id;
    while (!signal.aborted) {
      if (isRunning(id)) {
        h.prev = null;
        await streamLines(`/containers/${id}/stats?stream=1`, signal, (s) => {
          addSample(h, s);
          render();
        }).catch(() => undefined);
      }
      await sleep(1000);
    }
  }

  function select(id) {
    if (state.stream) state.stream.abort();
    state.selected = id;
    state.limits = null;
    state.stream = new AbortController();
    $('#detail').hidden = false;
    $('#charts').dataset.id = id;
    for (const li of document.querySelectorAll('#containers li')) li.setAttribute('aria-selected', String(li.dataset.id === id));
    refreshLimits(id, true).catch((e) => status(false, e.message));
    followStats(id, state.stream.signal);
    render();
  }

  // ---- events: oom and pressure, for every container, since the chart window before the page opened ----
  async function followEvents() {
    let since = Math.floor(nowS()) - WINDOW_S;
    for (;;) {
      await streamLines(`/events?since=${since}`, undefined, (ev) => {
        const key = `${ev.timeNano} ${ev.Actor?.ID} ${ev.Action}`;
        if (state.seen.has(key)) return;
        state.seen.add(key);
        since = Math.floor(ev.timeNano / 1e9);
        const a = ev.Actor?.Attributes || {};
        const text = ev.Action === 'pressure' ? `pressure ${a.resource} ${a.kind} ${a.window} ${a.value} > ${a.threshold}` : 'oom';
        state.events.push({ id: ev.Actor?.ID, t: ev.timeNano / 1e9, action: ev.Action, text });
        if (ev.Actor?.ID === state.selected) refreshLimits(state.selected, false).catch(() => undefined);
        render();
      }).catch(() => undefined);
      await sleep(1000);
    }
  }

  // ---- charts ----
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  const MARK = { oom: '#d00', pressure: '#e80' };

  /** One chart: a uPlot rebuilt when its set of series changes, with the markers drawn over it. */
  class Chart {
    constructor(el) {
      this.el = el;
      const h = document.createElement('h3');
      h.textContent = el.dataset.title;
      this.box = document.createElement('div');
      el.append(h, this.box);
      this.keys = '';
      this.plot = null;
      this.markers = [];
    }

    update(xs, series, markers) {
      this.markers = markers;
      this.el.dataset.markers = String(markers.length);
      this.el.dataset.oom = String(markers.filter((m) => m.action === 'oom').length);
      if (series.length === 0) {
        if (this.plot) this.plot.destroy();
        this.plot = null;
        this.keys = '';
        this.box.textContent = this.el.dataset.empty || 'no data yet';
        return;
      }
      if (!this.plot) this.box.textContent = '';
      const keys = series.map((s) => s.key).join('|');
      const data = [xs, ...series.map((s) => s.values)];
      if (keys !== this.keys || !this.plot) {
        if (this.plot) this.plot.destroy();
        this.keys = keys;
        this.plot = new uPlot(this.options(series), data, this.box);
      } else this.plot.setData(data);
      for (const s of series) {
        const last = [...s.values].reverse().find((x) => x !== null && x !== undefined);
        const peak = s.values.reduce((a, x) => (x !== null && x !== undefined && x > a ? x : a), -Infinity);
        const attr = s.key.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
        this.el.setAttribute(`data-last-${attr}`, last === undefined ? '' : String(Math.round(last * 100) / 100));
        this.el.setAttribute(`data-peak-${attr}`, peak === -Infinity ? '' : String(Math.round(peak * 100) / 100));
      }
    }

    options(series) {
      const width = Math.max(320, this.el.clientWidth || 460);
      return {
        width,
        height: 200,
        scales: { x: { time: true, range: () => [nowS() - WINDOW_S, nowS()] }, y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] } },
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: s.limit ? 1.5 : 2, dash: s.limit ? [6, 4] : undefined, spanGaps: false }))],
        plugins: [{ hooks: { draw: [(u) => this.drawMarkers(u)] } }],
      };
    }

    drawMarkers(u) {
      const { ctx, bbox } = u;
      ctx.save();
      ctx.lineWidth = 2;
      for (const m of this.markers) {
        const x = u.valToPos(m.t, 'x', true);
        if (x < bbox.left || x > bbox.left + bbox.width) continue;
        ctx.strokeStyle = MARK[m.action] || '#888';
        ctx.beginPath();
        ctx.moveTo(x, bbox.top);
        ctx.lineTo(x, bbox.top + bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    }
  }

  const charts = {};
  for (const k of ['cpu', 'mem', 'pids', 'io', 'psi']) charts[k] = new Chart($(`#chart-${k}`));

  function render() {
    const id = state.selected;
    if (!id) return;
    const h = history(id);
    // a point at "now" so the window (and markers after the last sample) reaches the present
    const xs = [...h.t, nowS()];
    const col = (k) => [...(h.cols.get(k) || new Array(h.t.length).fill(null)), null];
    const lim = (k) => {
      const c = col(k);
      c[c.length - 1] = c[c.length - 2] ?? null; // the limit line runs on to now
      return c;
    };
    const markers = state.events.filter((e) => e.id === id && e.t >= nowS() - WINDOW_S);
    const s = (key, label, values, extra) => ({ key, label, values, ...extra });
    charts.cpu.update(
      xs,
      [s('usage', 'CPU %', col('cpu')), s('quota', 'quota', lim('quota'), { limit: true, color: '#d62728' }), s('throttled', 'throttled (% of periods)', col('throttled'), { color: '#ff7f0e' })],
      markers,
    );
    charts.mem.update(
      xs,
      [
        s('usage', 'used', col('mem')),
        s('limit', 'limit', lim('memLimit'), { limit: true, color: '#d62728' }),
        s('reservation', 'reservation (memory.low)', lim('memRes'), { limit: true, color: '#2ca02c' }),
      ],
      markers,
    );
    charts.pids.update(xs, [s('current', 'pids', col('pids')), s('limit', 'limit', lim('pidsLimit'), { limit: true, color: '#d62728' })], markers);
    const dyn = (prefix) => [...h.cols.keys()].filter((k) => k.startsWith(prefix)).sort();
    charts.io.update(
      xs,
      dyn('io ').map((k) => s(k.slice(3), k.slice(3), col(k))),
      markers,
    );
    charts.psi.update(
      xs,
      dyn('psi ').map((k) => s(k.slice(4), k.slice(4), col(k))),
      markers,
    );
    renderEvents(markers);
  }

  function renderEvents(markers) {
    $('#events').replaceChildren(
      ...markers.map((m) => {
        const li = document.createElement('li');
        li.dataset.action = m.action;
        li.textContent = `${new Date(m.t * 1000).toLocaleTimeString()} ${m.text}`;
        return li;
      }),
    );
  }

  // ---- controls: update ----
  function status(ok, text) {
    $('#status').dataset.ok = String(ok);
    $('#status').textContent = text;
  }

  function controlsFrom(hc) {
    const slider = $('#cpu-slider');
    if (state.ncpu) slider.max = String(state.ncpu * 1000);
    const quota = limitsOf(hc).quota;
    slider.value = String(quota === null ? Number(slider.max) : Math.round(quota * 10));
    $('#cpu-value').textContent = quota === null ? 'no limit' : (quota / 100).toFixed(2);
    $('#mem-limit').value = hc.Memory > 0 ? String(hc.Memory / MiB) : '';
    $('#mem-res').value = hc.MemoryReservation > 0 ? String(hc.MemoryReservation / MiB) : '';
    $('#pids-limit').value = hc.PidsLimit > 0 ? String(hc.PidsLimit) : '';
    $('#blkio-weight').value = hc.BlkioWeight > 0 ? String(hc.BlkioWeight) : '';
  }

  let updating = Promise.resolve();
  /** Updates run one after the other (a dragged slider sends several), then inspect shows the new limits. */
  function update(body) {
    const id = state.selected;
    updating = updating.then(async () => {
      try {
        await api('POST', `/containers/${id}/update`, body);
        status(true, `updated ${Object.keys(body).join(', ')}`);
      } catch (e) {
        status(false, e.message);
      }
      await refreshLimits(id, false).catch(() => undefined);
    });
    return updating;
  }

  $('#cpu-slider').addEventListener('input', (e) => ($('#cpu-value').textContent = (Number(e.target.value) / 1000).toFixed(2)));
  $('#cpu-slider').addEventListener('change', (e) => update({ NanoCpus: Number(e.target.value) * 1e6 }));
  $('#limits').addEventListener('submit', (e) => {
    e.preventDefault();
    const hc = state.hostConfig || {};
    const body = {};
    const mem = Number($('#mem-limit').value) * MiB;
    if (mem > 0 && mem !== hc.Memory) {
      body.Memory = mem;
      // keep the swap allowance it had (Docker refuses a limit above an older memory+swap)
      if (hc.MemorySwap > 0) body.MemorySwap = mem + Math.max(0, hc.MemorySwap - hc.Memory);
    }
    const res = Number($('#mem-res').value) * MiB;
    if (res > 0 && res !== hc.MemoryReservation) body.MemoryReservation = res;
    const pids = $('#pids-limit').value;
    if (pids !== '' && Number(pids) !== hc.PidsLimit) body.PidsLimit = Number(pids);
    const w = Number($('#blkio-weight').value);
    if (w > 0 && w !== hc.BlkioWeight) body.BlkioWeight = w;
    if (Object.keys(body).length) update(body);
    else status(true, 'nothing changed');
  });

  window.addEventListener('resize', () => {
    for (const c of Object.values(charts)) if (c.plot) c.plot.setSize({ width: Math.max(320, c.el.clientWidth), height: 200 });
  });

  refreshList();
  setInterval(refreshList, 1000);
  setInterval(() => state.selected && refreshLimits(state.selected, false).catch(() => undefined), 2000);
  setInterval(render, 1000);
  followEvents();
})();
