"""The page's CSS, injected once per full run (outside the fragment)."""

from __future__ import annotations

import streamlit as st

from app.components.theme import themed

CSS = themed("""
<style>
/* dense, terminal-like */
[data-testid="stMainBlockContainer"], .block-container { padding: 3.4rem 1.5rem 1rem 1.5rem;
  max-width: 100%; }
/* metric cards (cards.cards_html): what a bordered st.metric showed, as one block a row */
.cards { display: grid; gap: 0.5rem; grid-template-columns: repeat(6, minmax(0, 1fr)); }
.cards.session { grid-template-columns: repeat(4, minmax(0, 1fr)); }
.card { padding: 6px 10px; border: 1px solid rgba(250,250,250,0.2); border-radius: 0.5rem;
  min-width: 0; }
.card .clabel { font-size: 0.78rem; color: $muted; line-height: 1.6; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.card .clabel.hint { cursor: help; }
.card .cvalue { font-size: 1.35rem; line-height: 1.5; color: #fafafa;
  font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.card .cdelta { display: inline-block; margin-top: 2px; padding: 0 6px; border-radius: 4px;
  font-size: 0.78rem; line-height: 1.6; font-variant-numeric: tabular-nums;
  white-space: nowrap; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
.card .cdelta .arrow { margin-right: 3px; font-size: 0.68rem; }
.card .cdelta.up { color: $green; background: rgba(14,203,129,0.12); }
.card .cdelta.down { color: $red; background: rgba(246,70,93,0.12); }
.card .cdelta.off { color: $muted; background: rgba(139,147,167,0.12); }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .cards.session { grid-template-columns: repeat(2, minmax(0, 1fr)); } }

.statusbar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center;
  padding: 6px 8px; border-radius: 6px; background: $panel; border: 1px solid $grid;
  font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: $text; }
.statusbar.stale, .statusbar.bad { border-color: $red; background: #2a1217; }
.statusbar .chip { padding: 1px 7px; border-radius: 4px; background: #0e1117;
  border: 1px solid $grid; white-space: nowrap; }
.statusbar .chip b { color: #e6e6e6; }
.statusbar .chip.state.ok { color: $green; border-color: $green; }
.statusbar .chip.state.sim { color: $amber; border-color: $amber; }
.statusbar .chip.state.warn, .statusbar .chip.warn { color: $amber; }
.statusbar .chip.state.bad, .statusbar .chip.bad { color: $red; border-color: $red; }
.statusbar .chip.state.off { color: $muted; }
.statusbar .chip.stale { color: #fff; background: $red; border-color: $red;
  font-weight: 700; }
.statusbar .chip.paused { color: #0e1117; background: $blue; border-color: $blue;
  font-weight: 700; }
.statusbar .detail { color: $muted; overflow: hidden; text-overflow: ellipsis; }

.simbanner { padding: 6px 10px; border-radius: 6px; font-weight: 800; letter-spacing: .02em;
  color: #0e1117; font-size: 14px;
  background: repeating-linear-gradient(135deg, $amber 0 18px, #e0a800 18px 36px); }
.simtag { color: #0e1117; background: $amber; border-radius: 3px; padding: 0 5px;
  font-weight: 800; }
.notice { padding: 10px 12px; border-radius: 6px; border: 1px solid $amber;
  color: $amber; background: #211d0e; font-size: 14px; }
.notice.bad { border-color: $red; color: $red; background: #2a1217; }
.notice.info { border-color: $blue; color: #9dc1ff; background: #101a2b; }

.panelhead { font: 700 11.5px/1.6 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  color: $muted; padding: 2px 4px; border-bottom: 1px solid $grid; }
table.book, table.trades { width: 100%; border-collapse: collapse; table-layout: fixed;
  font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-variant-numeric: tabular-nums; }
table.book th, table.trades th { color: $muted; font-weight: 500; text-align: right;
  padding: 1px 6px; border: none; background: none; }
table.book td, table.trades td { text-align: right; padding: 0 4px; border: none;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; color: $text; }
table.book th:first-child, table.book td:first-child,
table.trades th:first-child, table.trades td:first-child { text-align: left; }
table.book tr, table.trades tr { border: none; background-color: transparent; }
table.book tr.ask td.px { color: $red; }
table.book tr.bid td.px { color: $green; }
table.book tr.spreadrow td { color: #e6e6e6; background: $panel; padding: 3px 4px;
  border-top: 1px solid $grid; border-bottom: 1px solid $grid; }
table.book tr.spreadrow td.px { color: $amber; font-weight: 700; }

.tape { max-height: 760px; overflow-y: auto; container-type: inline-size; }
table.trades th.tm { width: 25%; }
table.trades th.px { width: 33%; }
table.trades th.qty { width: 23%; }
table.trades th.val { width: 19%; }
/* a narrow tape (small screens, sidebar open) drops the time column rather than truncating */
@container (max-width: 250px) { table.trades .tm { display: none; } }
.ladder { container-type: inline-size; }
@container (max-width: 230px) { table.book td, table.book th { padding: 0 2px; font-size: 11px; } }
table.trades { font-size: 11.5px; }
table.trades tr.buy td.px, table.trades tr.buy td:nth-child(3) { color: $green; }
table.trades tr.sell td.px, table.trades tr.sell td:nth-child(3) { color: $red; }
table.trades tr.big td { font-weight: 800; }
table.trades tr.big.buy { background: rgba(14,203,129,0.16); }
table.trades tr.big.sell { background: rgba(246,70,93,0.16); }
table.trades td.tm { color: $muted; }
table.trades td.empty { text-align: center; color: $muted; padding: 8px; }
/* whale alerts, under the chart */
div.alerts { max-height: 290px; overflow-y: auto; background: #11151e;
  border: 1px solid $grid; border-radius: 6px; }
div.alerts .panelhead { position: sticky; top: 0; background: #11151e; }
table.alerts { width: 100%; border-collapse: collapse; table-layout: fixed;
  font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-variant-numeric: tabular-nums; }
table.alerts tr { border: none; background-color: transparent; }
table.alerts th { color: $muted; font-weight: 500; text-align: right; padding: 1px 6px;
  border: none; background: none; }
table.alerts td { text-align: right; padding: 0 6px; border: none; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; color: $text; }
table.alerts th.tm, table.alerts td.tm { width: 15%; text-align: left; color: $muted; }
table.alerts th.mk, table.alerts td.mk { width: 30%; text-align: left; }
table.alerts th.sd { width: 9%; }
table.alerts th.val { width: 13%; }
table.alerts td.mk .ex { color: $muted; font-size: 11px; }
table.alerts td.mk .simtag { font-size: 10px; }
table.alerts tr.buy td.sd, table.alerts tr.buy td.px { color: $green; font-weight: 700; }
table.alerts tr.sell td.sd, table.alerts tr.sell td.px { color: $red; font-weight: 700; }
table.alerts td.val { color: #e6e6e6; font-weight: 700; }
table.alerts td.empty { text-align: center; color: $muted; padding: 8px; }
.footer { color: #5d6577; font: 11px ui-monospace, monospace; text-align: right; }

/* overview */
.statusbars { display: flex; flex-direction: column; gap: 4px; }
.movers { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.moverbox { background: #11151e; border: 1px solid $grid; border-radius: 6px; }
table.movers { width: 100%; border-collapse: collapse; table-layout: fixed;
  font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-variant-numeric: tabular-nums; }
table.movers tr { border: none; background-color: transparent; }
table.movers td { border: none; padding: 1px 8px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; color: $text; text-align: right; }
table.movers td.sym { text-align: left; width: 46%; color: #e6e6e6; font-weight: 600; }
table.movers td.sym .ex { color: $muted; font-weight: 400; font-size: 11.5px; }
table.movers td.sym .simtag { font-size: 10px; }
table.movers tr.up td.chg { color: $green; font-weight: 700; }
table.movers tr.down td.chg { color: $red; font-weight: 700; }
table.movers td.empty { text-align: center; color: $muted; padding: 8px; }
.ovcount { color: $muted; font-size: 14px; padding-bottom: 6px; }
.ovcount b { color: #e6e6e6; }
</style>
""")


def inject() -> None:
    st.html(CSS)
