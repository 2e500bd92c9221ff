import numpy as np, time
from pathlib import Path
from _data import load_ag_news
from sklearn.metrics import adjusted_rand_score as ari, normalized_mutual_info_score as nmi
from sklearn.mixture import BayesianGaussianMixture
from selfmem.clustering._tree import ward_merges, cut
from selfmem.memory._config import EmbeddingConfig
from selfmem.retrieval._models import make_embedder, make_own_embedder
from selfmem.retrieval._views import Views
texts, labels = load_ag_news('/tmp/keep/data'); labels=np.array(labels)
cache=Path('/tmp/agnews_dual.npy')
if cache.exists(): D=np.load(cache)
else:
    cfg=EmbeddingConfig(device='cuda')
    v=Views(make_embedder(cfg.general,cfg), make_own_embedder(cfg.own,cfg), mode='dual', alpha=cfg.alpha, own_dim=cfg.own_dim, shrinkage=cfg.own_shrinkage, min_fit=cfg.own_min_fit)
    raw=v.embed_raw(texts); v.fit_whitener(raw['own'], Path('/tmp')); D=v.index_vectors(raw); np.save(cache, D)
G=np.load('/tmp/agnews_minilm.npy')
for vname, X in (('general', G), ('dual', D)):
  X=X.astype(np.float64); mu=X.mean(0); _,_,vt=np.linalg.svd(X-mu, full_matrices=False)
  for nd, cov in ((16,'full'), (8,'full'), (16, 'diag')):
    for seed in (0, 1):
      Z=(X-mu)@vt[:nd].T
      t=time.time()
      b=BayesianGaussianMixture(n_components=50, covariance_type=cov, weight_concentration_prior_type='dirichlet_process', weight_concentration_prior=0.1, max_iter=200, random_state=seed, init_params='k-means++').fit(Z)
      dt=time.time()-t
      leaf=b.predict(Z); used=np.unique(leaf); remap={u:i for i,u in enumerate(used)}; leaf=np.array([remap[l] for l in leaf]); K=len(used)
      sizes=np.bincount(leaf).astype(float)
      full=np.zeros((K,X.shape[1])); np.add.at(full, leaf, X); fn=full/np.linalg.norm(full,axis=1,keepdims=True)
      mg=ward_merges(fn, sizes); costs=np.array([c for *_,c in mg])
      row=' '.join(f'{g}:{ari(labels, cut(mg,K,g)[leaf]):.2f}/{costs[-(g-1)]/costs[-g]:.2f}' for g in range(2,10))
      print(vname, nd, cov, seed, f'{dt:.0f}s K', K, 'leafNMI', round(nmi(labels,leaf),3), '| g:ARI/jump', row, flush=True)
