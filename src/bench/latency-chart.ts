import type { RequestResult } from "./request-result.js";

/**
 * Latency over time as a standalone SVG: one dot per request at its start time (s), TTFT in blue
 * and end-to-end latency in grey on a shared ms axis; rejected and failed requests as red ticks
 * along the bottom. No dependencies; opens in any browser.
 */
const W = 900;
const H = 420;
const PAD = { left: 64, right: 16, top: 28, bottom: 44 };

export function latencyChartSvg(results: readonly RequestResult[], title: string): string {
  const xs = results.map((r) => r.startMs / 1000);
  const ys = results.filter((r) => r.outcome === "completed").flatMap((r) => [r.e2eMs, r.ttftMs ?? 0]);
  const xMax = niceCeil(Math.max(1e-3, ...xs));
  const yMax = niceCeil(Math.max(1, ...ys));
  const px = (x: number) => PAD.left + (x / xMax) * (W - PAD.left - PAD.right);
  const py = (y: number) => H - PAD.bottom - (y / yMax) * (H - PAD.top - PAD.bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = (yMax * i) / 5;
    const x = (xMax * i) / 5;
    out.push(
      `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`,
      `<text x="${PAD.left - 6}" y="${py(y) + 4}" text-anchor="end">${round(y)}</text>`,
      `<text x="${px(x)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${round(x)}</text>`,
    );
  }
  out.push(
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">request start (s)</text>`,
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">latency (ms)</text>`,
  );
  for (const r of results) {
    const x = px(r.startMs / 1000).toFixed(1);
    if (r.outcome !== "completed") {
      out.push(`<line x1="${x}" x2="${x}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom - 8}" stroke="#d22"/>`);
      continue;
    }
    out.push(`<circle cx="${x}" cy="${py(r.e2eMs).toFixed(1)}" r="2" fill="#999"/>`);
    if (r.ttftMs !== undefined) out.push(`<circle cx="${x}" cy="${py(r.ttftMs).toFixed(1)}" r="2" fill="#1f6fd1"/>`);
  }
  out.push(
    `<circle cx="${W - 250}" cy="40" r="4" fill="#1f6fd1"/><text x="${W - 242}" y="44">TTFT</text>`,
    `<circle cx="${W - 190}" cy="40" r="4" fill="#999"/><text x="${W - 182}" y="44">E2E</text>`,
    `<line x1="${W - 130}" x2="${W - 130}" y1="36" y2="46" stroke="#d22"/><text x="${W - 124}" y="44">rejected/failed</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

function niceCeil(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const round = (v: number) => (v >= 100 ? Math.round(v) : Math.round(v * 100) / 100);

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}
