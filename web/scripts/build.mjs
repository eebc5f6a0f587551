// Build the console into ../src/stratowatch/web/static/ (committed, so `pip install` needs no npm):
//   console.js / console.css  the app bundled with MapLibre GL JS (esbuild, minified)
//   index.html                the page
//   land.json, borders.json, states.json   the offline base map (GeoJSON, lon/lat degrees)
// Base map: Natural Earth 1:50m land and country borders (npm `world-atlas`) and US state
// borders (npm `us-atlas`, US Census), converted from TopoJSON, cut at the antimeridian so that
// no polygon or line wraps the globe, rounded to 0.01 degree (about 1 km) with repeated points
// dropped. Output is deterministic: the same lock file gives the same files.
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import * as topojson from "topojson-client";
import { cutPolygon, cutLine } from "../src/antimeridian.js";

const here = dirname(fileURLToPath(import.meta.url));
const web = join(here, "..");
const out = join(web, "..", "src", "stratowatch", "web", "static");
const require = createRequire(import.meta.url);
const DIGITS = 2;

function topo(name) {
  return JSON.parse(readFileSync(require.resolve(name), "utf8"));
}

function round(ring) {
  const f = 10 ** DIGITS;
  const outRing = [];
  for (const [x, y] of ring) {
    const p = [Math.round(x * f) / f, Math.round(y * f) / f];
    const q = outRing[outRing.length - 1];
    if (!q || q[0] !== p[0] || q[1] !== p[1]) outRing.push(p);
  }
  return outRing;
}

function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

function linesOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "LineString") return [geometry.coordinates];
  if (geometry.type === "MultiLineString") return geometry.coordinates;
  return [];
}

/** Polygons (cut, rounded) as one MultiPolygon feature per input feature. */
function areaLayer(fc, props) {
  const features = [];
  for (const f of fc.features) {
    const polys = [];
    for (const poly of polygonsOf(f.geometry)) {
      for (const piece of cutPolygon(poly)) {
        const rings = piece.map(round).filter((r) => r.length >= 4);
        if (rings.length && rings[0].length >= 4) polys.push(rings);
      }
    }
    if (polys.length) features.push({ type: "Feature", properties: props(f), geometry: { type: "MultiPolygon", coordinates: polys } });
  }
  return { type: "FeatureCollection", features };
}

/** Lines (cut, rounded) as one MultiLineString feature. */
function lineLayer(geometry, properties) {
  const lines = [];
  for (const line of linesOf(geometry)) {
    for (const piece of cutLine(line)) {
      const r = round(piece);
      if (r.length >= 2) lines.push(r);
    }
  }
  return { type: "FeatureCollection", features: [{ type: "Feature", properties, geometry: { type: "MultiLineString", coordinates: lines } }] };
}

function write(name, doc) {
  const text = JSON.stringify(doc);
  writeFileSync(join(out, name), text);
  console.log(`${name}: ${(text.length / 1024).toFixed(0)} KiB`);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const land = topo("world-atlas/land-50m.json");
write("land.json", areaLayer(topojson.feature(land, land.objects.land), () => ({ kind: "land" })));
const countries = topo("world-atlas/countries-50m.json");
write("borders.json", lineLayer(topojson.mesh(countries, countries.objects.countries, (a, b) => a !== b), { kind: "border" }));
const states = topo("us-atlas/states-10m.json");
write("states.json", lineLayer(topojson.mesh(states, states.objects.states, (a, b) => a !== b), { kind: "state" }));

await build({
  entryPoints: { console: join(web, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  outdir: out,
  legalComments: "linked",
  logLevel: "info",
});
copyFileSync(join(web, "src", "index.html"), join(out, "index.html"));
