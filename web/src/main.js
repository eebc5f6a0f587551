// The stratowatch analyst console: the live air picture on an offline MapLibre map.
// Data comes only from the service's own HTTP API (same origin): REST under api/v1/ and the
// Server-Sent Events stream api/v1/stream. Nothing is fetched from anywhere else.
import maplibregl from "maplibre-gl";
import "maplibre-gl/dist/maplibre-gl.css";
import "./console.css";
import { cutPolygon, cutLine } from "./antimeridian.js";

const API = "api/v1";
const LEAD_RINGS_H = [6, 12, 24, 48, 72];
const TRAIL_POINTS = 40;
const LABEL_LIMIT = 250; // labels for every track in view when at most this many are in view
const LIST_ROWS = 300;
const HISTORY_STATES = 3000; // the latest states of a selected track (history line and plot)
const ICON_LIMIT = 1500; // icons by class for at most this many tracks in view, dots beyond (frame time)
const ALT_STOPS = [0, "#ff8c00", 3000, "#ffd400", 6000, "#7fd13b", 10000, "#00bcd4", 15000, "#3f6fd8", 20000, "#a040d0", 30000, "#ff3d8b"];

// ------------------------------------------------------------------ state (also for tests)
const state = {
  tracks: new Map(), // live picture: track_id -> track JSON
  cells: new Map(), // scaled out: cell -> that cell's latest tracks (the picture is their union)
  shown: new Map(), // what the map shows (live picture, or the replayed one)
  trails: new Map(), // track_id -> [[lon, lat], ...]
  timeS: null, // data time of the live picture
  firstS: null, // earliest data time seen (slider start)
  selected: null,
  prediction: null,
  history: [],
  alerts: new Map(),
  incidents: new Map(),
  replayS: null, // null: live; else the replayed data time
  playing: false,
};
// parseMs: JSON.parse of a tracks event; latenciesMs: an event's arrival to the first frame drawn with it; renderMs: building and handing
// the layers to MapLibre; dataAgeMs: wall clock at arrival minus the event's data time;
// frameDeltasMs: requestAnimationFrame intervals (frame time).
const stats = { events: 0, trackEvents: 0, renders: 0, latenciesMs: [], parseMs: [], renderMs: [], dataAgeMs: [], frameDeltasMs: [], dropped: 0 };
function keepLast(arr, n = 5000) {
  if (arr.length > n) arr.splice(0, arr.length - n);
}
const $ = (id) => document.getElementById(id);

function altColor(alt) {
  let i = 0;
  while (i + 2 < ALT_STOPS.length && alt >= ALT_STOPS[i + 2]) i += 2;
  return ALT_STOPS[i + 1];
}
function cls(t) {
  return t.classification ? t.classification.label : "unknown";
}
function fmtTime(s) {
  return s == null || !Number.isFinite(s) ? "–" : new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
async function getJSON(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}
async function getAll(path, max = 10000) {
  const items = [];
  const sep = path.includes("?") ? "&" : "?";
  for (let offset = 0; offset < max; offset += 1000) {
    const page = await getJSON(`${path}${sep}limit=1000&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) break;
  }
  return items;
}

/** The last ``max`` items of a paged list (oldest first). */
async function getTail(path, max) {
  const sep = path.includes("?") ? "&" : "?";
  const { total } = await getJSON(`${path}${sep}limit=1&offset=0`);
  const items = [];
  for (let offset = Math.max(0, total - max); offset < total; offset += 1000) {
    const page = await getJSON(`${path}${sep}limit=1000&offset=${offset}`);
    items.push(...page.items);
    if (page.items.length === 0) break;
  }
  return items;
}

// ------------------------------------------------------------------ map
const empty = () => ({ type: "FeatureCollection", features: [] });
const style = {
  version: 8,
  sources: {
    land: { type: "geojson", data: "static/land.json" },
    borders: { type: "geojson", data: "static/borders.json" },
    states: { type: "geojson", data: "static/states.json" },
    geofences: { type: "geojson", data: empty() },
    sensors: { type: "geojson", data: empty() },
    // live layers: re-tiled on every update, so tiled only to zoom 9 (over-zoomed beyond) with no buffer
    trails: { type: "geojson", data: empty(), maxzoom: 9, buffer: 0 },
    ellipses: { type: "geojson", data: empty(), maxzoom: 9, buffer: 0 },
    tracks: { type: "geojson", data: empty(), maxzoom: 9, buffer: 0 },
    prediction: { type: "geojson", data: empty() },
    history: { type: "geojson", data: empty() },
    backtrack: { type: "geojson", data: empty() },
  },
  layers: [
    { id: "sea", type: "background", paint: { "background-color": "#0d2030" } },
    { id: "land", type: "fill", source: "land", paint: { "fill-color": "#1f2a22" } },
    { id: "states", type: "line", source: "states", paint: { "line-color": "#4a5a50", "line-width": 0.6 } },
    { id: "borders", type: "line", source: "borders", paint: { "line-color": "#7d8f84", "line-width": 1 } },
    { id: "geofence-fill", type: "fill", source: "geofences", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": ["match", ["get", "severity"], "critical", "#e53935", "warning", "#fb8c00", "#1e88e5"], "fill-opacity": 0.12 } },
    { id: "geofence-line", type: "line", source: "geofences", paint: { "line-color": ["match", ["get", "severity"], "critical", "#e53935", "warning", "#fb8c00", "#1e88e5"], "line-width": 1.2, "line-dasharray": [3, 2] } },
    { id: "sensors", type: "circle", source: "sensors", paint: { "circle-radius": 3.5, "circle-color": "#000", "circle-stroke-color": "#9be7ff", "circle-stroke-width": 1.5 } },
    { id: "cone-fill", type: "fill", source: "prediction", filter: ["==", ["get", "kind"], "cone"], paint: { "fill-color": ["case", ["<=", ["get", "probability"], 0.5], "#ff5a36", "#ffb300"], "fill-opacity": ["case", ["<=", ["get", "probability"], 0.5], 0.1, 0.05] } },
    { id: "cone-ring", type: "line", source: "prediction", filter: ["all", ["==", ["get", "kind"], "cone"], ["==", ["get", "ring"], true]], paint: { "line-color": ["case", ["<=", ["get", "probability"], 0.5], "#ff7043", "#ffca28"], "line-width": ["case", ["<=", ["get", "probability"], 0.5], 1.6, 1.1], "line-dasharray": ["case", ["<=", ["get", "probability"], 0.5], ["literal", [1, 0]], ["literal", [4, 3]]] } },
    { id: "pred-members", type: "line", source: "prediction", filter: ["==", ["get", "kind"], "member"], paint: { "line-color": "#ff8a65", "line-width": 0.7, "line-opacity": 0.35 } },
    { id: "det-path", type: "line", source: "prediction", filter: ["==", ["get", "kind"], "deterministic_path"], paint: { "line-color": "#ffffff", "line-width": 1, "line-dasharray": [2, 2] } },
    { id: "median-path", type: "line", source: "prediction", filter: ["==", ["get", "kind"], "median_path"], paint: { "line-color": "#ff3d00", "line-width": 2.5 } },
    { id: "history", type: "line", source: "history", paint: { "line-color": "#b0bec5", "line-width": 2, "line-dasharray": [1, 1.5] } },
    { id: "back-members", type: "line", source: "backtrack", filter: ["==", ["get", "kind"], "member"], paint: { "line-color": "#4dd0e1", "line-width": 0.7, "line-opacity": 0.35 } },
    { id: "source-region", type: "line", source: "backtrack", filter: ["==", ["get", "kind"], "cone"], paint: { "line-color": "#4dd0e1", "line-width": ["case", ["<=", ["get", "probability"], 0.5], 1.6, 1], "line-dasharray": ["case", ["<=", ["get", "probability"], 0.5], ["literal", [1, 0]], ["literal", [4, 3]]] } },
    { id: "backtrack", type: "line", source: "backtrack", filter: ["==", ["get", "kind"], "median_path"], paint: { "line-color": "#4dd0e1", "line-width": 2, "line-dasharray": [3, 2] } },
    { id: "ellipses", type: "line", source: "ellipses", paint: { "line-color": ["get", "color"], "line-width": 0.8, "line-opacity": 0.7 } },
    { id: "trails", type: "line", source: "trails", paint: { "line-color": ["get", "color"], "line-width": 1.3, "line-opacity": 0.75 } },
    { id: "selected", type: "circle", source: "tracks", filter: ["==", ["get", "id"], -1], paint: { "circle-radius": 13, "circle-color": "rgba(0,0,0,0)", "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } },
    // a dense picture is drawn as dots (cheap), a sparse one with icons by class (see render())
    { id: "tracks-dots", type: "circle", source: "tracks", layout: { visibility: "none" }, paint: { "circle-radius": ["match", ["get", "cls"], "aircraft", 2.5, 3.5], "circle-color": ["interpolate", ["linear"], ["get", "alt"], ...ALT_STOPS], "circle-stroke-color": ["match", ["get", "cls"], "unknown", "#ffffff", "#000000"], "circle-stroke-width": ["match", ["get", "cls"], "unknown", 1.2, 0.5] } },
    { id: "tracks", type: "symbol", source: "tracks", layout: { "icon-image": ["get", "cls"], "icon-size": ["match", ["get", "cls"], "aircraft", 0.7, 0.85], "icon-rotate": ["get", "heading"], "icon-rotation-alignment": "map", "icon-allow-overlap": true, "icon-ignore-placement": true }, paint: { "icon-color": ["interpolate", ["linear"], ["get", "alt"], ...ALT_STOPS], "icon-halo-color": "#000", "icon-halo-width": 1 } },
  ],
};

const map = new maplibregl.Map({ container: "map", style, center: [-105, 45], zoom: 3, attributionControl: false, fadeDuration: 0 });
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: "Natural Earth · US Census (public domain)" }));

/** SDF icons drawn at runtime (no sprite file, no network): coloured by altitude in the layer. */
function icon(draw) {
  const s = 48;
  const c = document.createElement("canvas");
  c.width = c.height = s;
  const g = c.getContext("2d");
  g.fillStyle = "#fff";
  g.strokeStyle = "#fff";
  draw(g, s);
  return { width: s, height: s, data: g.getImageData(0, 0, s, s).data };
}
function addIcons() {
  const opts = { sdf: true, pixelRatio: 2 };
  map.addImage("balloon", icon((g, s) => {
    g.beginPath(); g.arc(s / 2, s * 0.38, s * 0.27, 0, 2 * Math.PI); g.fill();
    g.lineWidth = 3; g.beginPath(); g.moveTo(s / 2, s * 0.62); g.lineTo(s / 2, s * 0.92); g.stroke();
  }), opts);
  map.addImage("aircraft", icon((g, s) => {
    g.beginPath(); g.moveTo(s / 2, s * 0.06); g.lineTo(s * 0.88, s * 0.9); g.lineTo(s / 2, s * 0.7); g.lineTo(s * 0.12, s * 0.9); g.closePath(); g.fill();
  }), opts);
  map.addImage("unknown", icon((g, s) => {
    g.beginPath(); g.moveTo(s / 2, s * 0.08); g.lineTo(s * 0.92, s / 2); g.lineTo(s / 2, s * 0.92); g.lineTo(s * 0.08, s / 2); g.closePath(); g.fill();
  }), opts);
}

// ------------------------------------------------------------------ geometry helpers
const M_PER_DEG_LAT = 110_574;
function ellipseRing(t, k = 2, n = 24) {
  const se = t.position_sigma_m[0] * k;
  const sn = t.position_sigma_m[1] * k;
  const c = Math.max(Math.cos((t.lat_deg * Math.PI) / 180), 0.01);
  const ring = [];
  for (let i = 0; i <= n; i++) {
    const a = (2 * Math.PI * i) / n;
    ring.push([t.lon_deg + (se * Math.cos(a)) / (111_320 * c), t.lat_deg + (sn * Math.sin(a)) / M_PER_DEG_LAT]);
  }
  return ring;
}
function circleRing(lat, lon, radiusM, n = 64) {
  const c = Math.max(Math.cos((lat * Math.PI) / 180), 0.01);
  const ring = [];
  for (let i = 0; i <= n; i++) {
    const a = (2 * Math.PI * i) / n;
    ring.push([lon + (radiusM * Math.sin(a)) / (111_320 * c), lat + (radiusM * Math.cos(a)) / M_PER_DEG_LAT]);
  }
  return ring;
}
function polygonFeature(rings, properties) {
  const pieces = cutPolygon(rings);
  return { type: "Feature", properties, geometry: { type: "MultiPolygon", coordinates: pieces } };
}
function lineFeature(coords, properties) {
  return { type: "Feature", properties, geometry: { type: "MultiLineString", coordinates: cutLine(coords) } };
}

// ------------------------------------------------------------------ filters
function currentFilter() {
  const c = $("f-class").value;
  const minA = parseFloat($("f-min-alt").value);
  const maxA = parseFloat($("f-max-alt").value);
  const age = parseFloat($("f-age").value);
  const partner = $("f-partner").value.trim().toLowerCase();
  let re = null;
  const src = $("f-identity").value.trim();
  $("f-identity").style.borderColor = "";
  if (src) {
    try {
      re = new RegExp(src);
    } catch {
      $("f-identity").style.borderColor = "#e53935";
    }
  }
  const now = state.replayS ?? state.timeS ?? 0;
  return (t) => {
    if (c && cls(t) !== c) return false;
    if (Number.isFinite(minA) && t.alt_m < minA * 1000) return false;
    if (Number.isFinite(maxA) && t.alt_m > maxA * 1000) return false;
    if (Number.isFinite(age) && now - t.last_update_s > age) return false;
    if (re && !t.identities.some((i) => re.test(i))) return false;
    if (partner && !partnersOf(t).some((p) => p.toLowerCase() === partner)) return false;
    return true;
  };
}
/** Partners that contributed: the owners of its sensors and "track:<partner>:<id>" identities. */
const sensorOwner = new Map();
function partnersOf(t) {
  const out = new Set();
  for (const i of t.identities) if (i.startsWith("track:")) out.add(i.split(":")[1]);
  for (const s of t.sensors) {
    const owner = sensorOwner.get(s);
    if (owner) out.add(owner);
  }
  return [...out].sort();
}

// ------------------------------------------------------------------ rendering the picture
let dirty = false;
let pendingLatency = []; // receipt times (performance.now) of events not yet on screen
let listDue = 0;
let listTimer = null;

function schedule() {
  if (!dirty) {
    dirty = true;
    requestAnimationFrame(render);
  }
}

function render() {
  dirty = false;
  const began = performance.now();
  if (!map.isStyleLoaded()) {
    setTimeout(schedule, 50);
    return;
  }
  const keep = currentFilter();
  const feats = [];
  const trails = [];
  const ells = [];
  const b = map.getBounds();
  const w = b.getWest();
  const e = b.getEast();
  const s = b.getSouth();
  const n = b.getNorth();
  let inView = 0;
  const mPerPx = 40_075_016.686 / (512 * 2 ** map.getZoom()); // at the equator
  const showTrails = $("show-trails").checked;
  const showEllipses = $("show-ellipses").checked;
  for (const t of state.shown.values()) {
    if (!keep(t)) continue;
    const [ve, vn] = t.velocity_enu_mps;
    const color = altColor(t.alt_m);
    feats.push({
      type: "Feature",
      properties: { id: t.track_id, cls: cls(t), alt: t.alt_m, heading: (Math.atan2(ve, vn) * 180) / Math.PI },
      geometry: { type: "Point", coordinates: [t.lon_deg, t.lat_deg] },
    });
    const visible = t.lat_deg >= s && t.lat_deg <= n && (w <= e ? t.lon_deg >= w && t.lon_deg <= e : true);
    if (visible) inView++;
    // trails for every track of a sparse picture, for the selected one only in a dense one
    const trailed = showTrails && state.replayS === null && (!state.dots || t.track_id === state.selected);
    const trail = trailed ? state.trails.get(t.track_id) : null;
    if (trail && trail.length > 1) trails.push(lineFeature(trail, { color }));
    // an ellipse is drawn only where it is at least a few pixels across (else it is the icon)
    if (showEllipses && visible && (4 * Math.max(t.position_sigma_m[0], t.position_sigma_m[1])) / (mPerPx * Math.cos((t.lat_deg * Math.PI) / 180)) >= 6) {
      ells.push(lineFeature(ellipseRing(t), { color }));
    }
  }
  map.getSource("tracks").setData({ type: "FeatureCollection", features: feats });
  map.getSource("trails").setData({ type: "FeatureCollection", features: trails });
  map.getSource("ellipses").setData({ type: "FeatureCollection", features: ells });
  stats.renderMs.push(performance.now() - began);
  keepLast(stats.renderMs);
  state.visible = feats.length;
  state.inView = inView;
  const dots = inView > ICON_LIMIT;
  if (dots !== state.dots) {
    state.dots = dots;
    map.setLayoutProperty("tracks", "visibility", dots ? "none" : "visible");
    map.setLayoutProperty("tracks-dots", "visibility", dots ? "visible" : "none");
  }
  stats.renders++;
  const now = performance.now();
  if (now >= listDue) {
    listDue = now + 1000;
    renderList(keep);
  } else if (listTimer === null) {
    // the list is redrawn at most once a second, but always shows the latest picture
    listTimer = setTimeout(() => {
      listTimer = null;
      listDue = 0;
      schedule();
    }, listDue - now);
  }
  $("track-count").textContent = String(feats.length);
}

/** Event-to-screen latency: from an event's arrival to the first frame drawn with its data. */
map.on("sourcedata", (e) => {
  if (e.sourceId !== "tracks" || !e.isSourceLoaded || !pendingLatency.length) return;
  const started = pendingLatency;
  pendingLatency = [];
  map.once("render", () => {
    requestAnimationFrame(() => {
      const t = performance.now();
      for (const s of started) stats.latenciesMs.push(t - s);
      keepLast(stats.latenciesMs);
    });
  });
  map.triggerRepaint();
});

function renderList(keep) {
  const rows = [];
  const order = { unknown: 0, balloon: 1, aircraft: 2 };
  const list = [...state.shown.values()].filter(keep);
  list.sort((a, b) => order[cls(a)] - order[cls(b)] || a.track_id - b.track_id);
  for (const t of list.slice(0, LIST_ROWS)) {
    const id = t.identities[0] ?? "";
    rows.push(
      `<div class="item${t.track_id === state.selected ? " sel" : ""}" data-track="${t.track_id}"><span class="sw" style="background:${altColor(t.alt_m)}"></span>` +
        `<b>${t.track_id}</b> <span class="cls ${cls(t)}">${cls(t)}</span> ${esc(id)} <span class="muted">${(t.alt_m / 1000).toFixed(1)} km ${t.speed_mps.toFixed(0)} m/s</span></div>`,
    );
  }
  if (list.length > LIST_ROWS) rows.push(`<div class="muted">… ${list.length - LIST_ROWS} more (narrow the filters)</div>`);
  $("track-list").innerHTML = rows.join("");
}

// ------------------------------------------------------------------ labels (canvas overlay)
const labelCanvas = $("labels");
function drawLabels() {
  const dpr = window.devicePixelRatio || 1;
  const wrap = $("map-wrap");
  const W = wrap.clientWidth;
  const H = wrap.clientHeight;
  if (labelCanvas.width !== W * dpr || labelCanvas.height !== H * dpr) {
    labelCanvas.width = W * dpr;
    labelCanvas.height = H * dpr;
  }
  const g = labelCanvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  g.font = "11px 'DejaVu Sans', sans-serif";
  g.textBaseline = "top";
  const label = (x, y, lines, color) => {
    const wMax = Math.max(...lines.map((l) => g.measureText(l).width));
    g.fillStyle = "rgba(10,14,18,0.72)";
    g.fillRect(x, y, wMax + 6, lines.length * 13 + 3);
    g.fillStyle = color;
    lines.forEach((l, i) => g.fillText(l, x + 3, y + 2 + i * 13));
  };
  const all = $("show-labels").checked && (state.inView ?? Infinity) <= LABEL_LIMIT;
  const keep = all ? currentFilter() : null;
  for (const t of state.shown.values()) {
    if (!(all ? keep(t) : t.track_id === state.selected)) continue;
    const p = map.project([t.lon_deg, t.lat_deg]);
    if (p.x < -50 || p.y < -50 || p.x > W || p.y > H) continue;
    label(p.x + 10, p.y + 6, [`${t.track_id} ${t.identities[0] ?? ""}`, `${(t.alt_m / 1000).toFixed(1)} km  ${t.speed_mps.toFixed(0)} m/s`], "#e8eef4");
  }
  for (const f of state.prediction?.geojson?.features ?? []) {
    const pr = f.properties ?? {};
    if (pr.kind !== "cone" || pr.probability > 0.5 || !LEAD_RINGS_H.includes(Math.round(pr.lead_h))) continue;
    const ring = f.geometry.type === "Polygon" ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
    let top = ring[0];
    for (const q of ring) if (q[1] > top[1]) top = q;
    const p = map.project(top);
    label(p.x - 14, p.y - 16, [`+${Math.round(pr.lead_h)} h`], "#ffab91");
  }
}
map.on("render", drawLabels);

// ------------------------------------------------------------------ frame time (for the bench)
let lastFrame = null;
function frameLoop(t) {
  if (lastFrame !== null) {
    stats.frameDeltasMs.push(t - lastFrame);
    keepLast(stats.frameDeltasMs);
  }
  lastFrame = t;
  requestAnimationFrame(frameLoop);
}
requestAnimationFrame(frameLoop);

// ------------------------------------------------------------------ live stream
function applyTracks(ev, receivedAt) {
  stats.trackEvents++;
  stats.dataAgeMs.push(Date.now() - ev.time_s * 1000);
  keepLast(stats.dataAgeMs);
  // the single process sends whole pictures; tracker workers over cells one cell per event
  let incoming = ev.tracks;
  if (ev.cell === undefined || ev.cell === null) state.cells.clear();
  else {
    state.cells.set(ev.cell, ev.tracks);
    incoming = [];
    for (const tracks of state.cells.values()) for (const t of tracks) incoming.push(t);
  }
  const next = new Map();
  for (const t of incoming) {
    const had = next.get(t.track_id); // a track handed between two cells: its newer state
    if (had && had.time_s >= t.time_s) continue;
    next.set(t.track_id, t);
    const trail = state.trails.get(t.track_id);
    const p = [t.lon_deg, t.lat_deg];
    if (!trail) state.trails.set(t.track_id, [p]);
    else {
      const q = trail[trail.length - 1];
      if (q[0] !== p[0] || q[1] !== p[1]) {
        trail.push(p);
        if (trail.length > TRAIL_POINTS) trail.shift();
      }
    }
    if (state.firstS === null || t.first_time_s < state.firstS) state.firstS = t.first_time_s;
  }
  const handed = new Set(ev.handed ?? []); // on its way to another cell: keep its trail
  for (const id of state.trails.keys()) if (!next.has(id) && !handed.has(id)) state.trails.delete(id);
  state.tracks = next;
  state.timeS = ev.time_s;
  if (!state.framed && next.size) frame(next);
  updateSlider();
  if (state.replayS === null) {
    state.shown = next;
    pendingLatency.push(receivedAt);
    schedule();
    if (state.selected !== null && next.has(state.selected)) renderDetailLive(next.get(state.selected));
  }
}

/** Fit the map to the first picture, unless the analyst has moved it already. */
function frame(tracks) {
  state.framed = true;
  if (state.userMoved) return;
  let w = 180, e = -180, s = 90, n = -90;
  for (const t of tracks.values()) {
    w = Math.min(w, t.lon_deg); e = Math.max(e, t.lon_deg);
    s = Math.min(s, t.lat_deg); n = Math.max(n, t.lat_deg);
  }
  map.fitBounds([[w, s], [e, n]], { padding: 120, maxZoom: 7, duration: 0 });
}

function connect() {
  const es = new EventSource(`${API}/stream?topics=tracks,alerts,incidents,predictions,geofences`);
  es.onopen = () => {
    $("conn").textContent = "live";
    $("conn").className = "conn on";
  };
  es.onerror = () => {
    $("conn").textContent = "reconnecting";
    $("conn").className = "conn off";
  };
  es.addEventListener("tracks", (m) => {
    const at = performance.now();
    stats.events++;
    const ev = JSON.parse(m.data);
    stats.parseMs.push(performance.now() - at);
    keepLast(stats.parseMs);
    applyTracks(ev, at);
  });
  es.addEventListener("alerts", (m) => {
    stats.events++;
    const a = JSON.parse(m.data);
    state.alerts.set(a.alert_id, a);
    renderAlerts();
  });
  es.addEventListener("incidents", (m) => {
    stats.events++;
    const i = JSON.parse(m.data);
    state.incidents.set(i.incident_id, i);
    renderIncidents();
  });
  es.addEventListener("predictions", (m) => {
    stats.events++;
    const p = JSON.parse(m.data);
    if (p.track_id === state.selected) loadPrediction(p.track_id);
  });
  es.addEventListener("geofences", () => loadGeofences());
  es.addEventListener("dropped", (m) => {
    stats.dropped += JSON.parse(m.data).dropped;
  });
  return es;
}

// ------------------------------------------------------------------ static layers
/** Whether the viewer may see an item with these releasability labels. */
function releasable(labels) {
  const cleared = state.clearance;
  return !cleared || (labels ?? ["PUBLIC"]).some((l) => cleared.has(l));
}
async function loadGeofences() {
  const fences = (await getAll(`${API}/geofences`)).filter((g) => releasable(g.releasable_to));
  const feats = [];
  for (const g of fences) {
    const props = { id: g.geofence_id, name: g.name, severity: g.severity };
    const ll = g.coordinates.map(([lat, lon]) => [lon, lat]);
    if (g.kind === "circle") feats.push(polygonFeature([circleRing(g.coordinates[0][0], g.coordinates[0][1], g.radius_m)], props));
    else if (g.kind === "polygon") feats.push(polygonFeature([[...ll, ll[0]]], props));
    else feats.push(lineFeature(ll, props));
  }
  // MultiPolygon pieces are drawn by the polygon filter too
  for (const f of feats) if (f.geometry.type === "MultiPolygon" && f.geometry.coordinates.length === 1) f.geometry = { type: "Polygon", coordinates: f.geometry.coordinates[0] };
  map.getSource("geofences").setData({ type: "FeatureCollection", features: feats });
  state.geofences = fences;
}
async function loadSensors() {
  const sensors = await getAll(`${API}/sensors`);
  for (const s of sensors) sensorOwner.set(s.sensor_id, s.owner);
  const feats = sensors
    .filter((s) => s.lat_deg != null && s.lon_deg != null && releasable(s.releasable_to))
    .map((s) => ({ type: "Feature", properties: { id: s.sensor_id, owner: s.owner }, geometry: { type: "Point", coordinates: [s.lon_deg, s.lat_deg] } }));
  map.getSource("sensors").setData({ type: "FeatureCollection", features: feats });
}
async function loadBanner() {
  try {
    const who = await getJSON(`${API}/console/whoami`);
    state.clearance = new Set(who.releasable_to);
    $("banner").textContent = who.banner;
    $("banner").title = `cleared for: ${who.releasable_to.join(", ")}`;
  } catch (err) {
    state.clearance = new Set(["PUBLIC"]);
    $("banner").textContent = "RELEASABILITY UNKNOWN";
    $("banner").style.background = "#7a2a2a";
  }
}

// ------------------------------------------------------------------ selection and detail
async function select(id) {
  state.selected = id;
  state.prediction = null;
  map.setFilter("selected", ["==", ["get", "id"], id ?? -1]);
  map.getSource("prediction").setData(empty());
  map.getSource("history").setData(empty());
  map.getSource("backtrack").setData(empty());
  state.backtrack = null;
  listDue = 0;
  schedule();
  if (id === null) {
    $("detail").innerHTML = '<p class="muted">Select a track on the map or in the list.</p>';
    return;
  }
  const t = state.shown.get(id) ?? (await getJSON(`${API}/tracks/${id}`));
  renderDetail(t);
  const drifting = ["balloon", "unknown"].includes(cls(t));
  const around = drifting
    ? Promise.all([loadPrediction(id), loadBacktrack(id)]).then(() => {
        if (state.selected !== id) return;
        // frame where it came from and where it may go
        const feats = [...(state.prediction?.geojson?.features ?? []), ...(state.backtrack?.features ?? [])].filter((f) => f.geometry);
        if (feats.length) fitTo(feats, state.shown.get(id));
      })
    : Promise.resolve();
  const [hist] = await Promise.all([getTail(`${API}/tracks/${id}/history`, HISTORY_STATES).catch(() => []), around]);
  if (state.selected !== id) return;
  state.history = hist;
  const line = hist.map((h) => [h.lon_deg, h.lat_deg]);
  map.getSource("history").setData(line.length > 1 ? { type: "FeatureCollection", features: [lineFeature(line, { track_id: id })] } : empty());
  drawHistoryPlot();
}

/** Where the track came from: the service's backward ensemble (median path, 50 %/90 % source regions). */
async function loadBacktrack(id) {
  let doc;
  try {
    doc = await getJSON(`${API}/console/backtrack/${id}?hours=24`);
  } catch (err) {
    if (state.selected === id && $("back")) $("back").textContent = `no back-trajectory (${err.message})`;
    return;
  }
  if (state.selected !== id) return;
  state.backtrack = doc;
  const feats = doc.features.map((f) =>
    f.geometry.type === "LineString" ? lineFeature(f.geometry.coordinates.map((c) => [c[0], c[1]]), f.properties) : f,
  );
  map.getSource("backtrack").setData({ type: "FeatureCollection", features: feats });
  const p = doc.properties;
  if ($("back")) $("back").innerHTML = `back ${p.hours} h to ${fmtTime(p.earliest_s)} · ${p.members} members (cyan: median path, 50 %/90 % source regions, thin: ensemble members)${(p.notes ?? []).map((n) => `<br><span class="muted">${esc(n)}</span>`).join("")}`;
}

async function loadPrediction(id) {
  let p;
  try {
    p = await getJSON(`${API}/predictions/${id}`);
  } catch {
    if (state.selected === id) $("pred").innerHTML = '<span class="muted">no prediction yet</span>';
    return;
  }
  if (state.selected !== id) return;
  state.prediction = p;
  const feats = [];
  for (const f of p.geojson.features) {
    if (!f.geometry) continue;
    const pr = { ...f.properties };
    if (pr.kind === "cone") pr.ring = LEAD_RINGS_H.includes(Math.round(pr.lead_h));
    if (f.geometry.type === "LineString") feats.push(lineFeature(f.geometry.coordinates.map((c) => [c[0], c[1]]), pr));
    else feats.push({ type: "Feature", properties: pr, geometry: f.geometry });
  }
  // the widest (90 %) cones under the 50 % ones
  feats.sort((a, b) => (b.properties.probability ?? 0) - (a.properties.probability ?? 0));
  map.getSource("prediction").setData({ type: "FeatureCollection", features: feats });
  renderPrediction(p);
}

/** Frame a newly selected track's prediction (cones and paths) with the track. */
function fitTo(features, track) {
  let w = 180, e = -180, s = 90, n = -90;
  const add = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(add);
  };
  for (const f of features) add(f.geometry.coordinates);
  if (track) add([track.lon_deg, track.lat_deg]);
  if (w > e || e - w > 180) return; // nothing, or across the antimeridian: leave the view
  map.fitBounds([[w, s], [e, n]], { padding: 60, maxZoom: 8, duration: 600 });
}

function renderDetail(t) {
  const c = t.classification;
  const reasons = (c?.reasons ?? []).map((r) => `<li>${esc(r)}</li>`).join("");
  const probs = c ? Object.entries(c.probabilities).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(", ") : "";
  const predictable = ["balloon", "unknown"].includes(cls(t));
  $("detail").innerHTML =
    `<h2>Track ${t.track_id} <span class="cls ${cls(t)}">${cls(t)}</span> <button id="deselect" title="close">✕</button></h2>` +
    `<table><tbody id="live-rows"></tbody>` +
    `<tr><td>classification</td><td>${c ? `${c.label} ${(c.probability * 100).toFixed(0)}%<br><span class="muted">${probs}</span><ul>${reasons}</ul>` : "–"}</td></tr>` +
    `<tr><td>identity</td><td>${t.identities.map(esc).join("<br>") || "none"}</td></tr>` +
    `<tr><td>sensors</td><td>${t.sensors.map(esc).join(", ") || "–"}</td></tr>` +
    `<tr><td>partners</td><td>${partnersOf(t).map(esc).join(", ") || "–"}</td></tr></table>` +
    `<h2>History <span class="muted small">altitude (km, blue) · speed (m/s, orange)</span></h2><canvas id="hist-plot" width="600" height="220"></canvas>` +
    (predictable ? `<h2>Prediction</h2><div id="pred"><span class="muted">loading…</span></div><h2>Back-trajectory</h2><div id="back" class="small"><span class="muted">computing…</span></div>` : "");
  $("deselect").onclick = () => select(null);
  renderDetailLive(t);
}
function renderDetailLive(t) {
  const rows = $("live-rows");
  if (!rows) return;
  rows.innerHTML =
    `<tr><td>time</td><td class="mono">${fmtTime(t.time_s)}</td></tr>` +
    `<tr><td>position</td><td class="mono">${t.lat_deg.toFixed(4)}, ${t.lon_deg.toFixed(4)}</td></tr>` +
    `<tr><td>altitude</td><td>${(t.alt_m / 1000).toFixed(2)} km ± ${(2 * t.position_sigma_m[2]).toFixed(0)} m (2σ)</td></tr>` +
    `<tr><td>speed</td><td>${t.speed_mps.toFixed(1)} m/s, heading ${(((Math.atan2(t.velocity_enu_mps[0], t.velocity_enu_mps[1]) * 180) / Math.PI + 360) % 360).toFixed(0)}°</td></tr>` +
    `<tr><td>status</td><td>${t.status}, ${t.n_updates} updates since ${fmtTime(t.first_time_s)}</td></tr>`;
}
function renderPrediction(p) {
  const el = $("pred");
  if (!el) return;
  const arr = [...p.arrivals].sort((a, b) => b.probability - a.probability);
  const names = new Map((state.geofences ?? []).map((g) => [g.geofence_id, g.name]));
  const rows = arr.map(
    (a) =>
      `<tr><td title="${esc(a.geofence_id)}">${esc(a.name ?? names.get(a.geofence_id) ?? a.geofence_id)}</td><td>${(a.probability * 100).toFixed(0)}%</td>` +
      `<td class="mono">${fmtTime(a.earliest_s).slice(5, 16)}<br>${fmtTime(a.median_s).slice(5, 16)}</td></tr>`,
  );
  el.innerHTML =
    `<div class="muted" title="${esc(p.source ?? "")}">${fmtTime(p.time_s)} · ${p.hours ?? "?"} h · ${p.members ?? "?"} members · winds ${esc(String(p.source ?? "?").split("/").pop())}</div>` +
    (p.error ? `<div>failed: ${esc(p.error)}</div>` : "") +
    `<div class="small">50 % cone (solid) and 90 % cone (dashed) at +${LEAD_RINGS_H.join(", +")} h; red line: ensemble median; thin orange: ensemble members; white dashed: deterministic; grey dotted: observed history.</div>` +
    `<table id="arrivals"><tr class="muted"><td>may enter</td><td>p</td><td>earliest / median</td></tr>${rows.join("") || '<tr><td colspan="3" class="muted">no geofence reached</td></tr>'}</table>` +
    `<div class="small">export: ${["geojson", "kml", "czml", "csv"].map((f) => `<a href="${API}/exports/predictions/${p.track_id}.${f}" download>${f.toUpperCase()}</a>`).join(" ")}</div>`;
}
function drawHistoryPlot() {
  const c = $("hist-plot");
  if (!c || state.history.length < 2) return;
  const g = c.getContext("2d");
  const W = c.width;
  const H = c.height;
  g.clearRect(0, 0, W, H);
  const h = state.history;
  const t0 = h[0].time_s;
  const t1 = h[h.length - 1].time_s || t0 + 1;
  const series = [
    { v: h.map((s) => s.alt_m / 1000), color: "#4fc3f7" },
    { v: h.map((s) => s.speed_mps), color: "#ffb74d" },
  ];
  g.font = "18px sans-serif";
  series.forEach(({ v, color }, k) => {
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    const span = hi - lo || 1;
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    h.forEach((s, i) => {
      const x = ((s.time_s - t0) / (t1 - t0 || 1)) * (W - 10) + 5;
      const y = H - 10 - ((v[i] - lo) / span) * (H - 30);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
    g.fillStyle = color;
    g.fillText(`${lo.toFixed(1)}–${hi.toFixed(1)}`, 8 + k * 200, 18);
  });
}

// ------------------------------------------------------------------ alerts and incidents
function operator() {
  return $("operator").value.trim() || "analyst";
}
async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const doc = await r.json();
  if (!r.ok) throw new Error(doc?.error?.message ?? `HTTP ${r.status}`);
  return doc;
}
function renderAlerts() {
  const showAcked = $("show-acked").checked;
  const list = [...state.alerts.values()].sort((a, b) => b.time_s - a.time_s);
  const open = list.filter((a) => !a.acknowledged_by);
  $("alert-count").textContent = String(open.length);
  $("alert-list").innerHTML = list
    .filter((a) => showAcked || !a.acknowledged_by)
    .slice(0, 200)
    .map(
      (a) =>
        `<div class="item alert ${esc(a.severity)}${a.acknowledged_by ? " acked" : ""}" data-alert="${esc(a.alert_id)}" ${a.track_id != null ? `data-track="${a.track_id}"` : ""}>` +
        `<b>${esc(a.rule)}</b> <span class="muted mono">${fmtTime(a.time_s).slice(11)}</span><br>${esc(a.message)}<br>` +
        (a.acknowledged_by ? `<span class="muted">acknowledged by ${esc(a.acknowledged_by)}</span>` : `<button class="ack" data-ack="${esc(a.alert_id)}">acknowledge</button>`) +
        `</div>`,
    )
    .join("");
}
function renderIncidents() {
  const list = [...state.incidents.values()].sort((a, b) => b.updated_s - a.updated_s);
  $("incident-count").textContent = String(list.filter((i) => i.status !== "resolved").length);
  $("incident-list").innerHTML = list
    .slice(0, 100)
    .map(
      (i) =>
        `<div class="item" data-incident="${esc(i.incident_id)}"><b>${esc(i.title)}</b> <span class="muted">${esc(i.status)}</span><br>` +
        `<span class="muted">tracks ${i.track_ids.join(", ")} · ${i.alert_ids.length} alerts · ${fmtTime(i.updated_s).slice(11)}</span> ` +
        (i.status !== "resolved" ? `<button class="resolve" data-resolve="${esc(i.incident_id)}">resolve</button>` : "") +
        ` <a href="${API}/exports/incidents/${encodeURIComponent(i.incident_id)}.kml" download>KML</a></div>`,
    )
    .join("");
}
async function loadAlerts() {
  for (const a of await getAll(`${API}/alerts`, 1000)) state.alerts.set(a.alert_id, a);
  for (const i of await getAll(`${API}/incidents`, 1000)) state.incidents.set(i.incident_id, i);
  renderAlerts();
  renderIncidents();
}

// ------------------------------------------------------------------ time slider (replay)
function updateSlider() {
  const sl = $("slider");
  if (state.firstS === null || state.timeS === null) return;
  sl.min = String(Math.floor(state.firstS));
  sl.max = String(Math.ceil(state.timeS));
  if (state.replayS === null) sl.value = sl.max;
  $("slider-time").textContent = fmtTime(state.replayS ?? state.timeS) + (state.replayS === null ? " live" : " replay");
  $("clock").textContent = fmtTime(state.timeS);
}
let replaySeq = 0;
/** Show the picture as it was at data time ``t``: each track's last stored state in the window before ``t``. */
async function replayAt(t) {
  const seq = ++replaySeq;
  state.replayS = t;
  $("live").className = "live";
  updateSlider();
  const window = 600;
  const states = await getAll(`${API}/history?t0=${t - window}&t1=${t}&bbox=-90,-180,90,180`, 20000);
  if (seq !== replaySeq || state.replayS === null) return;
  const shown = new Map();
  for (const s of states) {
    const prev = shown.get(s.track_id);
    if (!prev || s.time_s > prev.time_s) shown.set(s.track_id, s);
  }
  state.shown = shown;
  listDue = 0;
  schedule();
}
function goLive() {
  replaySeq++;
  state.replayS = null;
  state.playing = false;
  $("play").textContent = "▶";
  $("live").className = "live on";
  state.shown = state.tracks;
  listDue = 0;
  updateSlider();
  schedule();
}
async function play() {
  if (state.playing) {
    state.playing = false;
    $("play").textContent = "▶";
    return;
  }
  state.playing = true;
  $("play").textContent = "❚❚";
  let t = state.replayS ?? state.firstS;
  const step = Math.max((state.timeS - state.firstS) / 60, 1);
  while (state.playing && t <= state.timeS) {
    $("slider").value = String(t);
    await replayAt(t);
    await new Promise((r) => setTimeout(r, 250));
    t += step;
  }
  if (state.playing) goLive();
}

// ------------------------------------------------------------------ wiring
function legend() {
  const stops = [];
  for (let i = 0; i < ALT_STOPS.length; i += 2) stops.push(`${ALT_STOPS[i + 1]} ${(i / (ALT_STOPS.length - 2)) * 100}%`);
  $("legend-scale").innerHTML = `altitude <div class="bar" style="background:linear-gradient(90deg,${stops.join(",")})"></div><span class="muted">0 · 6 · 15 · 30 km &nbsp; ● balloon ▲ aircraft ◆ unknown</span>`;
}
function wire() {
  for (const id of ["f-class", "f-age", "f-min-alt", "f-max-alt", "f-identity", "f-partner", "show-trails", "show-ellipses", "show-labels"]) {
    $(id).addEventListener("input", () => {
      listDue = 0;
      schedule();
      map.triggerRepaint();
    });
  }
  $("track-list").addEventListener("click", (e) => {
    const row = e.target.closest("[data-track]");
    if (row) {
      const id = Number(row.dataset.track);
      select(id);
      const t = state.shown.get(id);
      if (t) map.easeTo({ center: [t.lon_deg, t.lat_deg], duration: 400 });
    }
  });
  $("alert-list").addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-ack]");
    if (btn) {
      btn.disabled = true;
      try {
        const a = await post(`${API}/alerts/${encodeURIComponent(btn.dataset.ack)}/acknowledge`, { who: operator() });
        state.alerts.set(a.alert_id, a);
      } catch (err) {
        btn.textContent = `failed: ${err.message}`;
        return;
      }
      renderAlerts();
      return;
    }
    const row = e.target.closest("[data-track]");
    if (row) select(Number(row.dataset.track));
  });
  $("incident-list").addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-resolve]");
    if (!btn) return;
    const note = window.prompt("Resolution note", "") ?? "";
    btn.disabled = true;
    try {
      const inc = await post(`${API}/incidents/${encodeURIComponent(btn.dataset.resolve)}/resolve`, { who: operator(), note });
      state.incidents.set(inc.incident_id, inc);
    } catch (err) {
      btn.textContent = `failed: ${err.message}`;
      return;
    }
    renderIncidents();
  });
  $("show-acked").addEventListener("change", renderAlerts);
  $("slider").addEventListener("input", () => replayAt(Number($("slider").value)));
  $("live").addEventListener("click", goLive);
  $("play").addEventListener("click", play);
  $("operator").value = localStorage.getItem("stratowatch.operator") || "analyst";
  $("operator").addEventListener("change", () => localStorage.setItem("stratowatch.operator", operator()));
  for (const layer of ["tracks", "tracks-dots"]) {
    map.on("click", layer, (e) => {
      if (e.features?.length) select(Number(e.features[0].properties.id));
    });
    map.on("mouseenter", layer, () => (map.getCanvas().style.cursor = "pointer"));
    map.on("mouseleave", layer, () => (map.getCanvas().style.cursor = ""));
  }
  map.on("moveend", schedule);
  for (const ev of ["dragstart", "zoomstart", "rotatestart"]) map.on(ev, (e) => { if (e.originalEvent) state.userMoved = true; });
}

async function start() {
  wire();
  legend();
  await loadBanner();
  await new Promise((r) => (map.loaded() ? r() : map.once("load", r)));
  addIcons();
  connect();
  const [tracks] = await Promise.all([getAll(`${API}/tracks`, 20000), loadGeofences(), loadSensors(), loadAlerts()]);
  if (!state.tracks.size && tracks.length) applyTracks({ time_s: Math.max(...tracks.map((t) => t.time_s)), tracks }, performance.now());
  state.ready = true;
}

window.stratowatch = { state, stats, map, select, replayAt, goLive };
start().catch((err) => {
  console.error(err);
  state.error = String(err);
});
