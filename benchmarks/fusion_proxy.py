"""Build the PAIRED-like proxy feature store used to choose the fusion defaults (benchmarks/fusion.py --only paired_proxy).

EmoDB 4-class clips (MFCC as the chain computes them), EmoDB speakers as 5 sessions x (F, M); for each clip a real IEMOCAP
transcript of the same class from the IEMOCAP session of the same number (MiniLM embedding) and a real FER2013 validation face of
the same class from a per-session pool (shipped FER encoder: the face and its mirror image as 2 frames). PAIRED-like: real
signals paired by label, independent given the label; not a recording. Usage: python benchmarks/fusion_proxy.py [OUT_DIR]
(default /tmp/h6/proxy; about 40 s)."""
import os; os.environ.setdefault('OMP_NUM_THREADS', '1')
import numpy as np, pandas as pd, torch, time
torch.set_num_threads(1)
from cmer.baselines import read_emodb, EMODB_TO_IEMOCAP4, EMODB_SPEAKERS
from cmer.core import make_features, save_features
from cmer.default_model import audio_features
from cmer.fer import load_fer2013, load_fer_encoder, fer_predict, FER_CLASSES, IEMOCAP4
from cmer.text_embed import load_encoder, embed
t0 = time.time()
classes = ['neu', 'ang', 'sad', 'hap']
df = read_emodb(); df = df[df.label4 != ''].reset_index(drop=True)
F_ = sorted(s for s, g in EMODB_SPEAKERS.items() if g == 'F'); M_ = sorted(s for s, g in EMODB_SPEAKERS.items() if g == 'M')
sess = {s: i + 1 for i, s in enumerate(F_)} | {s: i + 1 for i, s in enumerate(M_)}
tab = pd.DataFrame(dict(utt_id=df.utt_id, session=df.speaker.map(sess), speaker=df.speaker, gender=df.gender, label=df.label4, wav=df.wav))
tab['label_id'] = tab.label.map({c: i for i, c in enumerate(classes)})
rng = np.random.default_rng(0)
iem = pd.read_csv('/work/shared/data/iemocap.csv'); iem['Label'] = iem.Label.replace('exc', 'hap'); iem['ses'] = iem.FileName.str[3:5].astype(int)
fer = load_fer2013(); Xf, yf = fer['validation']
fer_lab = np.array([FER_CLASSES[i] for i in yf]); inv = {v: k for k, v in IEMOCAP4.items()}
fer_lab = np.array([inv.get(l, '') for l in fer_lab])
fsess = rng.integers(1, 6, len(yf))      # disjoint face pools per session
texts, faces = [], []
for r in tab.itertuples():
    pool = iem[(iem.ses == r.session) & (iem.Label == r.label)]
    texts.append(pool.Sentences.iloc[rng.integers(len(pool))])
    fp = np.flatnonzero((fsess == r.session) & (fer_lab == r.label))
    faces.append(fp[rng.integers(len(fp))])
tab['transcript'] = texts
fa = audio_features(tab)
enc = load_encoder('minilm'); T = embed(enc, texts)
emb, _ = fer_predict(load_fer_encoder(), Xf[np.array(faces)])
flip, _ = fer_predict(load_fer_encoder(), Xf[np.array(faces)][:, :, ::-1].copy())
V = [np.stack([e, f]).astype(np.float32) for e, f in zip(emb, flip)]
import sys; from pathlib import Path; d = sys.argv[1] if len(sys.argv) > 1 else '/tmp/h6/proxy'; Path(d).mkdir(parents=True, exist_ok=True)
tab.drop(columns=['wav']).to_csv(f'{d}/utterances.csv', index=False)
save_features(f'{d}/mfcc.npz', fa)
save_features(f'{d}/text.npz', make_features(tab.utt_id, T, meta={'kind': 'text', 'model': 'minilm'}, ragged=False))
save_features(f'{d}/frames.npz', make_features(tab.utt_id, V, meta={'kind': 'fer'}))
print('done', len(tab), tab.groupby('session').speaker.unique().to_dict(), time.time() - t0)
