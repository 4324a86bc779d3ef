"""Paper vs here: each published figure beside what this project measured (from the models' cards),
with the command behind our number. The papers' numbers are quoted, never measured here."""
import pandas as pd
import streamlit as st

from app.ui import catalog, figures, safe
from baa_core import paper
from baa_core.protocol import controls_table

st.title("Paper vs here")
st.markdown("The **paper** column quotes the two papers (BAA's abstract; BudgetFormer's Table II as reviewers summarised it). "
            "The **here** column is what this project measured, read from the card of a model on hand (shipped or yours); "
            "the command that produced it is beside it. An empty *here* means no model on hand measures that setting yet.")

entries = [e for e in catalog.list_models() if not e.problem]
cards = [dict(e.card.as_dict(), _name=e.name, _source=e.source) for e in entries]  # validated cards
rows, bars = [], []
for fig in paper.FIGURES:
    found = paper.find_ours(fig, cards)
    here, where, command, extra = None, "", "", ""
    if found:
        card, row = found
        here = row[fig.ours.key]
        where = f"{card['_name']} ({card['_source']})"
        command = card.get("command", "")
        if row.get("accuracy_std") is not None and fig.ours.key == "accuracy":
            extra = f" ± {100 * row['accuracy_std']:.1f} ({row.get('seeds', len(row.get('accuracy_seeds', [])))} seeds)"
        if row.get("accuracy_ci") and fig.ours.key == "accuracy":
            extra += f" [95% CI {100 * row['accuracy_ci'][0]:.1f}–{100 * row['accuracy_ci'][1]:.1f}]"
        if row.get("speedup_ci") and fig.ours.key == "speedup":
            extra += f" [95% CI {row['speedup_ci'][0]:.2f}–{row['speedup_ci'][1]:.2f}]"
        if fig.ours.key == "accuracy" and row.get("est_cost") is not None:
            extra += f" at cost {row['est_cost']:.3f}"
        if fig.ours.key == "accuracy" and fig.unit == "%":
            bars.append({"label": f"{fig.setting}<br>({fig.metric})<br>here: {card['_name']}", "paper": fig.value, "ours": here,
                         "ours_ci": row.get("accuracy_ci")})
    elif fig.ours is not None and (partial := paper.find_ours(fig, cards, require_value=False)):
        where = f"{partial[0]['_name']} ({partial[0]['_source']})"
        command = (f"not in the card yet ({fig.ours.key} was not measured when it was made); to measure it on this CPU: "
                   f"python -m baa_core bench {catalog.pretrained_dir().name if partial[0]['_source'] == 'shipped' else catalog.user_models_dir().name}"
                   f"/{partial[0]['_name']} --update-card")
    elif fig.ours is not None:
        command = f"not measured here yet; to measure it: {fig.ours.command}"
    rows.append({"paper": f"{fig.paper} (arXiv {fig.arxiv})", "setting": fig.setting, "figure": fig.metric,
                 "paper's number": fig.format(), "here (measured)": (fig.format(here) + extra) if here is not None else "—",
                 "model card": where, "command": command or "no counterpart in this project", "note": fig.note,
                 "source": fig.source})

table = pd.DataFrame(rows)
for name, arxiv in (paper.BAA, paper.BUDGETFORMER):
    st.subheader(name)
    part = table[table["paper"].str.startswith(name)]
    st.dataframe(part[["setting", "figure", "paper's number", "here (measured)", "note", "model card"]], hide_index=True,
                 key=f"paper_table_{arxiv}")
    with st.expander("The commands behind the numbers, and notes"):
        for _, r in part.iterrows():
            note = f" — {r['note']}" if r["note"] else ""
            cmd = safe.code(r["command"]) if r["command"].startswith(("python", "not")) else safe.md(r["command"])
            st.markdown(f"- **{r['setting']}, {r['figure']}** ({r['source']}): {cmd}{note}")
st.caption("arXiv: " + " · ".join(f"[{n}](https://arxiv.org/abs/{a})" for n, a in (paper.BAA, paper.BUDGETFORMER)))

controls = controls_table(cards)
if controls:
    st.subheader("Controls: what each task gives without attention")
    st.dataframe(pd.DataFrame(figures.format_controls(controls)), hide_index=True, key="paper_controls")
    st.caption("From the cards, test split, with the 95% interval over test examples where the card has one: the model "
               "itself (at budget 0.5, or its only row), the same weights with every head closed, the same network "
               "trained with no attention for the same epochs, and chance (1/C is exact). The gap between the first and "
               "the no-attention columns is what attention carries on that task.")

if bars:
    st.subheader("Accuracy: the paper's number and ours")
    st.caption("Each pair compares the paper's model (named in the setting) with the model measured here (named under "
               "it): a different model size where they differ, as the notes above say. Whiskers: our 95% interval.")
    st.plotly_chart(figures.render_paper_vs_here(bars), key="paper_bars", config=figures.EXPORT_CONFIG)
st.download_button("Download this comparison (CSV)", table.to_csv(index=False), "paper_vs_here.csv", "text/csv", key="paper_csv")
