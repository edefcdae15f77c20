"""A workflow's state diagram as SVG, drawn on the server: states as boxes left to right in
declaration order, transitions as arrows (forward ones above the boxes, backward ones below).
Text goes through markupsafe, so a label cannot inject markup."""
from __future__ import annotations

from markupsafe import Markup, escape

BOX_W, BOX_H, GAP, TOP = 120, 44, 56, 70


def _label(lbl, lang: str, fallback: str) -> str:
    if isinstance(lbl, dict):
        return str((lbl.get("zh") if lang == "zh" else None) or lbl.get("en") or fallback)
    return str(lbl or fallback)


def _short(text: str, n: int = 16) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def diagram(data: dict, lang: str = "en") -> Markup:
    states = list((data.get("states") or {}).items())
    order = {sid: i for i, (sid, _s) in enumerate(states)}
    transitions = [(tid, t) for tid, t in (data.get("transitions") or {}).items() if isinstance(t, dict)]
    width = max(1, len(states)) * (BOX_W + GAP) + GAP
    arcs = []
    for tid, t in transitions:
        sources = t.get("from")
        sources = list(order) if sources == "*" else (sources if isinstance(sources, list) else [sources])
        for s in sources:
            if s in order and t.get("to") in order:
                arcs.append((tid, t, order[s], order[t["to"]]))
    height = TOP + BOX_H + 40 + 18 * sum(1 for a in arcs if a[3] <= a[2]) + 40
    cx = lambda i: GAP + i * (BOX_W + GAP) + BOX_W / 2  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="wf-diagram" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(data.get("workflow", ""))}">',
           '<defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    initial = data.get("initial")
    fwd = back = 0
    for tid, t, a, b in arcs:
        text = escape(_short(_label(t.get("label"), lang, tid), 18))
        if b > a:      # forward: an arc above the boxes, higher for longer jumps
            fwd += 1
            x1, x2 = cx(a) + 10, cx(b) - 10
            lift = 18 + 12 * (b - a) + 4 * (fwd % 3)
            y = TOP
            out.append(f'<path d="M{x1:.0f},{y} C{x1:.0f},{y - lift} {x2:.0f},{y - lift} {x2:.0f},{y}" fill="none" '
                       f'stroke="#555" marker-end="url(#wf-arrow)" data-transition="{escape(tid)}"/>')
            out.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{y - lift * 0.75 - 2:.0f}" text-anchor="middle" '
                       f'font-size="11" fill="#333">{text}</text>')
        else:          # backward or to itself: below the boxes
            back += 1
            x1, x2 = cx(a) - 10, cx(b) + 10 if b != a else cx(b) + 20
            y = TOP + BOX_H
            drop = 18 + 18 * back
            out.append(f'<path d="M{x1:.0f},{y} C{x1:.0f},{y + drop} {x2:.0f},{y + drop} {x2:.0f},{y}" fill="none" '
                       f'stroke="#8a5a00" stroke-dasharray="4 3" marker-end="url(#wf-arrow)" '
                       f'data-transition="{escape(tid)}"/>')
            out.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{y + drop * 0.75 + 12:.0f}" text-anchor="middle" '
                       f'font-size="11" fill="#8a5a00">{text}</text>')
    for i, (sid, s) in enumerate(states):
        s = s if isinstance(s, dict) else {}
        x = GAP + i * (BOX_W + GAP)
        final = bool(s.get("final"))
        out.append(f'<g class="wf-state" data-state="{escape(sid)}">'
                   f'<rect x="{x}" y="{TOP}" width="{BOX_W}" height="{BOX_H}" rx="8" '
                   f'fill="{"#eef6ee" if final else "#eef3fb"}" stroke="{"#2e7d32" if sid == initial else "#4a6fa5"}" '
                   f'stroke-width="{3 if final or sid == initial else 1.5}"/>'
                   f'<text x="{x + BOX_W / 2}" y="{TOP + 20}" text-anchor="middle" font-size="13" fill="#111">'
                   f'{escape(_short(_label(s.get("label"), lang, sid)))}</text>'
                   f'<text x="{x + BOX_W / 2}" y="{TOP + 35}" text-anchor="middle" font-size="10" fill="#666">'
                   f'{escape(_short(sid, 20))}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))
