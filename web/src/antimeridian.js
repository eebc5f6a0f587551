// Cutting polygons and lines at the antimeridian (lon = +/-180), so that nothing drawn on a flat
// map wraps the globe. Shared by the build (base map) and the app (geofences, cones, ellipses).

/** The ring with longitudes made continuous (each step at most 180 degrees). */
function unwrap(ring) {
  const out = [];
  let prev = null;
  for (const p of ring) {
    let lon = p[0];
    if (prev !== null) {
      while (lon - prev > 180) lon -= 360;
      while (lon - prev < -180) lon += 360;
    }
    out.push([lon, p[1]]);
    prev = lon;
  }
  return out;
}

/** Sutherland-Hodgman clip of a closed ring to lon >= x (keepEast) or lon <= x. */
function clipHalf(ring, x, keepEast) {
  const inside = (p) => (keepEast ? p[0] >= x : p[0] <= x);
  const out = [];
  for (let i = 0; i < ring.length; i++) {
    const a = ring[i];
    const b = ring[(i + 1) % ring.length];
    const ia = inside(a);
    const ib = inside(b);
    if (ia) out.push(a);
    if (ia !== ib) {
      const f = (x - a[0]) / (b[0] - a[0]);
      out.push([x, a[1] + f * (b[1] - a[1])]);
    }
  }
  return out;
}

function openRing(ring) {
  const n = ring.length;
  if (n > 1 && ring[0][0] === ring[n - 1][0] && ring[0][1] === ring[n - 1][1]) return ring.slice(0, n - 1);
  return ring.slice();
}

function close(ring) {
  return ring.length ? [...ring, ring[0]] : ring;
}

/** A ring (possibly circling a pole) unwrapped and closed on the plane. */
function planarRing(ring) {
  const u = unwrap(openRing(ring));
  if (u.length < 3) return u;
  const first = u[0];
  const last = u[u.length - 1];
  let closing = first[0] - last[0];
  while (closing > 180) closing -= 360;
  while (closing < -180) closing += 360;
  const span = last[0] + closing - first[0]; // 0 for an ordinary ring, +/-360 around a pole
  if (Math.abs(span) > 180) {
    const mean = u.reduce((s, p) => s + p[1], 0) / u.length;
    const pole = mean < 0 ? -90 : 90;
    const endLon = first[0] + span;
    u.push([endLon, (last[1] + first[1]) / 2]);
    u.push([endLon, pole]);
    u.push([first[0], pole]);
  }
  return u;
}

/**
 * A GeoJSON polygon (rings of [lon, lat]) as a list of polygons, each within [-180, 180].
 * A polygon crossing the antimeridian is cut into its pieces; one around a pole is closed
 * along the pole.
 */
export function cutPolygon(rings) {
  const planar = rings.map(planarRing).filter((r) => r.length >= 3);
  if (!planar.length) return [];
  const outer = planar[0];
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of outer) {
    lo = Math.min(lo, p[0]);
    hi = Math.max(hi, p[0]);
  }
  const pieces = [];
  const k0 = Math.floor((lo + 180) / 360);
  const k1 = Math.floor((hi + 180) / 360 - 1e-12);
  for (let k = k0; k <= k1; k++) {
    const west = -180 + 360 * k;
    const east = 180 + 360 * k;
    const clip = (r) => {
      let c = r;
      if (Math.min(...c.map((p) => p[0])) < west) c = clipHalf(c, west, true);
      if (c.length && Math.max(...c.map((p) => p[0])) > east) c = clipHalf(c, east, false);
      return c.length >= 3 ? close(c.map((p) => [p[0] - 360 * k, p[1]])) : null;
    };
    const shell = clip(outer);
    if (!shell) continue;
    const piece = [shell];
    for (const hole of planar.slice(1)) {
      // holes are moved into the same copy of the plane as the shell before clipping
      let shift = 0;
      while (hole[0][0] + shift < west) shift += 360;
      while (hole[0][0] + shift > east) shift -= 360;
      const h = clip(hole.map((p) => [p[0] + shift, p[1]]));
      if (h) piece.push(h);
    }
    pieces.push(piece);
  }
  return pieces;
}

/** A GeoJSON line of [lon, lat] split where it crosses the antimeridian. */
export function cutLine(line) {
  const pieces = [];
  let cur = [];
  for (let i = 0; i < line.length; i++) {
    const p = line[i];
    if (cur.length) {
      const a = cur[cur.length - 1];
      let d = p[0] - a[0];
      if (Math.abs(d) > 180) {
        const east = d < 0; // going east across +180
        const bx = east ? p[0] + 360 : p[0] - 360;
        const edge = east ? 180 : -180;
        const f = (edge - a[0]) / (bx - a[0]);
        const lat = a[1] + f * (p[1] - a[1]);
        cur.push([edge, lat]);
        if (cur.length >= 2) pieces.push(cur);
        cur = [[-edge, lat]];
      }
    }
    cur.push([p[0], p[1]]);
  }
  if (cur.length >= 2) pieces.push(cur);
  return pieces;
}
