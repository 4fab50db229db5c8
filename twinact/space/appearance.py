"""An action space with the appearance directions taken out: each slot's basis projected off the span of the actor
words' embeddings.

The design check (:func:`twinact.space.action_space.design_check`) measures how much of the actor words' embeddings a
slot's span can express; on a small model's table it is more than random directions, so learned coefficients can
carry the exemplars' appearance. Projecting the basis onto the orthogonal complement of those words (centred on the
slot's PCA mean, as the span is) makes that fraction zero by construction, at the cost of the action directions that
overlap them. Not in the paper; ``action_space.remove_appearance=true`` turns it on, with
``action_space.design_words`` as the words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from twinact.errors import TwinActError
from twinact.space.action_space import RANK_RTOL, ActionSpace, word_rows


def without_appearance(space: ActionSpace, tokenizer, table: torch.Tensor, words: Sequence[str],
                       phrases: Sequence[str] = ()) -> ActionSpace:
    """``space`` with each slot's basis orthogonal to the word pieces of ``words`` that no phrase uses.

    Each slot keeps the orthonormal directions of its projected basis (K_s shrinks by the overlap); the PCA mean and
    the zero padding are kept, the explained-variance ratios become each new direction's share of the projected
    basis (the old per-direction ratios no longer name a direction).
    """
    rows, ids = word_rows(words, tokenizer, table, exclude=phrases)
    if not ids:
        raise TwinActError(f"action_space.remove_appearance: the words {list(words)} have no word piece outside the "
                           "phrase list; set action_space.design_words to actor words.")
    slots, k_max, dim = space.basis.shape
    new_bases, ratios, ks = [], [], []
    for s in range(slots):
        k = space.slot_components[s]
        actor = (rows.double() - space.mean[s].double())
        u, sv, vh = torch.linalg.svd(actor, full_matrices=False)
        keep = sv > RANK_RTOL * sv[0] if sv.numel() and sv[0] > 0 else torch.zeros_like(sv, dtype=torch.bool)
        appearance = vh[keep]  # orthonormal rows spanning the centred actor words
        basis = space.basis[s, :k].double()
        projected = basis - (basis @ appearance.T) @ appearance
        _, pv, ph = torch.linalg.svd(projected, full_matrices=False)
        kept = pv > 1e-6
        if not kept.any():
            raise TwinActError(f"action_space.remove_appearance: slot {s}'s span lies wholly in the actor words' span "
                               "(nothing left); use fewer design_words or a larger action_space.max_components.")
        new_bases.append(ph[kept].float())
        ratios.append((pv[kept] ** 2 / (pv[kept] ** 2).sum()).float())
        ks.append(int(kept.sum()))
    basis = torch.zeros(slots, max(ks), dim)
    evr = torch.zeros(slots, max(ks))
    for s, (b, r) in enumerate(zip(new_bases, ratios)):
        basis[s, : ks[s]] = b
        evr[s, : ks[s]] = r
    meta = {**space.meta, "key": f"{space.meta['key']}-noappearance", "num_components": ks,
            "appearance_removed": {"words": list(words), "rows": len(ids),
                                   "components_before": space.slot_components}}
    return ActionSpace(basis, space.mean.clone(), evr, meta)
