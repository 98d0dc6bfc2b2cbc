"""The lexical view of the text modality (step 07's `lexical`): what it adds to the sentence embedding, and how many
dimensions it gets.

Data: IEMOCAP transcripts (real), 4 classes (neu, ang, sad, hap+exc), leave-one-session-out, 16 previous turns of
past context (the mean of the same- and the other-speaker turns, cmer.context.context_mean, as benchmarks/probes.py
gives its probe). Every row is the linear probe of cmer.baselines.probe_cv (logistic regression, standardised,
class-balanced, C chosen on speaker-grouped inner folds of the training part) unless named otherwise:
- MiniLM: the sentence embedding alone (the chain's text features before the lexical view);
- TF-IDF: word 1-2-gram TF-IDF (sublinear tf, terms in >= 2 transcripts) with the same context, logistic regression
  on the sparse features (C from 1, 3 chosen on the same inner folds); 'MiniLM, TF-IDF late': the mean of the two
  probes' log-probabilities (equal weights, nothing tuned);
- MiniLM + lexical d: the embedding with the LexicalMap's d SVD components appended (cmer.text_embed.LexicalMap),
  the map fitted in each fold on its training transcripts only; 'd chosen on inner folds': per fold the d whose
  probe scores best on the inner folds of the training part; 'fitted on every transcript': the map fitted on all
  5,531 transcripts, test sessions included (no labels), as step 07 fits it on a whole corpus.
UA on the improvised dialogues alone (column impro): scripted dialogues repeat their scripts in every session, so a
lexical reader might only recognise the script; the improvised ones have no such help.

    python benchmarks/text_lexical.py [--dims 128,256,512,1024] [--work /tmp/cmer_bench]

Writes benchmarks/text_lexical.md and benchmarks/results/text_lexical.json.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
T0 = time.perf_counter()
def log(*a): print(f"[{time.perf_counter() - T0:7.0f}s]", *a, flush=True)


def ua(y, p) -> float:
    from cmer.metrics import emotion_metrics
    return float(emotion_metrics(y, p)['ua'])


def tfidf_probe(texts, y, tr, te, groups, idx, rel, cs=(1.0, 3.0)):
    "Log-probabilities of the TF-IDF probe with context on the test rows; C chosen on 2 session-grouped inner folds."
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from cmer.context import context_mean
    def feats(fit_rows):
        v = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit([texts[i] for i in fit_rows])
        T = v.transform(texts); return sp.hstack([T, *context_mean(T, idx, rel)]).tocsr()
    def fit(X, rows, C): return LogisticRegression(C=C, max_iter=3000, class_weight='balanced').fit(X[rows], y[rows])
    scores = {C: [] for C in cs}
    for a, b in GroupKFold(2).split(tr, groups=groups[tr]):
        X = feats(tr[a])
        for C in cs: scores[C].append(ua(y[tr[b]], fit(X, tr[a], C).predict(X[tr[b]])))
    C = max(cs, key=lambda c: np.mean(scores[c]))
    X = feats(tr); m = fit(X, tr, C)
    lp = np.full((len(te), int(y.max()) + 1), -np.inf); lp[:, m.classes_] = m.predict_log_proba(X[te])
    return lp, C


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dims', default='128,256,512,1024'); ap.add_argument('--work', default='/tmp/cmer_bench')
    ap.add_argument('--results', default=str(HERE/'results'/'text_lexical.json')); ap.add_argument('--md', default=str(HERE/'text_lexical.md'))
    a = ap.parse_args(argv)
    from cmer.core import get_config, atomic_json
    from cmer.default_model import iemocap_text_table, DEFAULT_CLASSES
    from cmer.text_embed import LexicalMap, LEXICAL_DIM, TextFeaturizer
    from cmer.train import make_data
    from cmer.context import context_index, context_mean
    from cmer.protocols import loso_folds
    from cmer.baselines import probe_cv
    from probes import text_embeddings
    dims = [int(d) for d in a.dims.split(',')]
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    table = iemocap_text_table()
    emb = text_embeddings(work, table, 'minilm')
    data = make_data(table, {'text': emb}, DEFAULT_CLASSES)
    assert (data.table.utt_id.to_numpy() == table.utt_id.to_numpy()).all()
    folds = loso_folds(data.table); y = data.labels; groups = data.table.speaker.astype(str).to_numpy()
    sessions = data.table.session.astype(str).to_numpy()
    impro = data.table.utt_id.str.contains('impro').to_numpy()
    texts = [TextFeaturizer.clean(t) for t in table.transcript]
    E = emb.data.astype(np.float32)
    idx, rel = context_index(data.table, 16)
    def ctx(Z): return np.hstack([Z, *context_mean(Z, idx, rel)])
    seed = get_config().seed
    rows = {}                                 # row name -> per fold dict(ua, impro, val, C)
    def add(name, f, te, pred, **kw):
        rows.setdefault(name, []).append(dict(fold=f['name'], ua=ua(y[te], pred), impro=ua(y[te][impro[te]], pred[impro[te]]), **kw))
    X_base = ctx(E)                           # the same in every fold, as is the map fitted on every transcript
    X_all = ctx(np.hstack([E, LexicalMap.fit(texts, LEXICAL_DIM, seed=seed).transform(texts)]))
    for f in folds:
        tr, te = np.asarray(f['train']), np.asarray(f['test'])
        def probe(X):
            r = probe_cv({'x': X}, y, [f], groups)
            return np.nan_to_num(r['prob'][te], nan=0.0), r['folds'][0]
        p_base, r = probe(X_base); add('MiniLM', f, te, p_base.argmax(1), val=r['val_ua'], C=r['params']['C'])
        lp_t, C = tfidf_probe(texts, y, tr, te, sessions, idx, rel); add('TF-IDF', f, te, lp_t.argmax(1), C=C)
        lp_e = np.log(np.clip(p_base, 1e-12, None)); add('MiniLM, TF-IDF late', f, te, (0.5 * lp_e + 0.5 * lp_t).argmax(1))
        for d in dims:
            t = time.perf_counter()
            lm = LexicalMap.fit([texts[i] for i in tr], d, seed=seed)
            p, r = probe(ctx(np.hstack([E, lm.transform(texts)])))
            add(f'MiniLM + lexical {d}', f, te, p.argmax(1), val=r['val_ua'], C=r['params']['C'], terms=len(lm.vocabulary), seconds=round(time.perf_counter() - t, 1))
        best = max(dims, key=lambda d: rows[f'MiniLM + lexical {d}'][-1]['val'])
        rows.setdefault('MiniLM + lexical, d chosen on inner folds', []).append(dict(rows[f'MiniLM + lexical {best}'][-1], chosen=best))
        p, r = probe(X_all)
        add(f'MiniLM + lexical {LEXICAL_DIM}, fitted on every transcript', f, te, p.argmax(1), val=r['val_ua'], C=r['params']['C'])
        log(f['name'], {k: round(v[-1]['ua'], 3) for k, v in rows.items()})
    R = dict(rows={k: dict(folds=v, ua=float(np.mean([x['ua'] for x in v])), ua_std=float(np.std([x['ua'] for x in v], ddof=1)),
                           impro=float(np.mean([x['impro'] for x in v])), impro_std=float(np.std([x['impro'] for x in v], ddof=1))) for k, v in rows.items()},
             dims=dims, default=LEXICAL_DIM, n=len(y), folds=[f['name'] for f in folds], seconds=round(time.perf_counter() - T0),
             machine=f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, 1 thread", when=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    atomic_json(Path(a.results), R)
    write_md(R, Path(a.md))
    print(Path(a.md).read_text())


def write_md(R:dict, path:Path):
    def pm(m, s): return f"{m:.3f} ± {s:.3f}"
    base = R['rows']['MiniLM']
    L = ["# The lexical view of the text modality", "", "Regenerate with `python benchmarks/text_lexical.py` "
         f"({R['seconds']} s). " + ' '.join(__doc__.split('\n\n')[1].split()), "",
         f"Data: IEMOCAP transcripts (real), {R['n']} utterances; UA mean ± sd over the 5 test sessions.", "",
         "| setting | UA | impro UA | " + ' | '.join(R['folds']) + " | − MiniLM (higher in) |", "|---|---|---|" + "---|" * len(R['folds']) + "---|"]
    for k, r in R['rows'].items():
        diff = np.array([x['ua'] for x in r['folds']]) - np.array([x['ua'] for x in base['folds']])
        L.append(f"| {k} | {pm(r['ua'], r['ua_std'])} | {pm(r['impro'], r['impro_std'])} | " + ' | '.join(f"{x['ua']:.3f}" for x in r['folds'])
                 + (f" | {diff.mean():+.3f} ({int((diff > 0).sum())}/5) |" if k != 'MiniLM' else " | |"))
    ch = R['rows']['MiniLM + lexical, d chosen on inner folds']['folds']
    L += ["", f"d chosen on the inner folds, per test session: {', '.join(str(x['chosen']) for x in ch)} (of {', '.join(map(str, R['dims']))}); "
          f"the chain's default: {R['default']}. Inner-fold UA per d and fold: " + '; '.join(
              f"{d}: " + ' / '.join(f"{x['val']:.3f}" for x in R['rows'][f'MiniLM + lexical {d}']['folds']) for d in R['dims']) + ".",
          "", f"Machine: {R['machine']}; {R['when']}."]
    path.write_text('\n'.join(L) + '\n')


if __name__ == '__main__':
    main()
