"""GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018), as the official code does it.

The module is plain PyTorch: an input layer (shared output embedding, a separate embedding,
or one-hot input folded into the first GRU layer), GRU layers with dropout, and an output
layer of item vectors ``Wy`` and biases ``By``. Its objective and session-parallel training
live beside it (:mod:`.objective`, :mod:`.training`); :meth:`GRU4Rec.replay` is its
session-parallel evaluation fast path.
See ``docs/models/gru4rec.md`` for each option and the deviations from the reference code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator
from torch import Tensor, nn

from seqrec._config import ConfigModel
from seqrec.data.batching import TorchSessionSchedule, session_parallel_schedule
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData


class GRU4RecConfig(ConfigModel):
    """Architecture of GRU4Rec.

    Parameters
    ----------
    layers
        Hidden units of each GRU layer (official ``layers``), e.g. ``[100]``.
    embedding_dim
        Size of a separate input embedding; 0 for none (official ``embedding``).
    constrained_embedding
        Use the output item vectors ``Wy`` as input embedding (official default, True).
        Takes precedence over ``embedding_dim``.
    dropout_embed, dropout_hidden
        Dropout on the input embedding and after each GRU layer (official
        ``dropout_p_embed`` / ``dropout_p_hidden``).
    init
        ``"official"``: uniform(±sqrt(6/(fan_in+fan_out))) per gate block as the reference
        code; ``"torch"``: PyTorch defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["gru4rec"] = "gru4rec"
    layers: list[int] = Field(default_factory=lambda: [100], min_length=1)
    embedding_dim: int = Field(0, ge=0)
    constrained_embedding: bool = True
    dropout_embed: float = Field(0.0, ge=0.0, lt=1.0)
    dropout_hidden: float = Field(0.0, ge=0.0, lt=1.0)
    init: Literal["official", "torch"] = "official"

    @model_validator(mode="after")
    def _check(self) -> GRU4RecConfig:
        if any(h < 1 for h in self.layers):
            raise ValueError("every layer size must be >= 1")
        return self

    @property
    def input_mode(self) -> Literal["constrained", "embedding", "onehot"]:
        if self.constrained_embedding:
            return "constrained"
        return "embedding" if self.embedding_dim > 0 else "onehot"


def _init_uniform(t: Tensor, dim0_scale: float = 1.0, dim1_scale: float = 1.0) -> None:
    sigma = math.sqrt(6.0 / (t.size(0) / dim0_scale + t.size(1) / dim1_scale))
    with torch.no_grad():
        t.uniform_(-sigma, sigma)


class GRU4Rec(nn.Module):
    """GRU4Rec network over ``n_items`` item indices (index 0 is padding and never scored high).

    Shapes: ``B`` sessions in a batch, ``D`` the last layer's size, ``M`` scored items.
    """

    def __init__(self, config: GRU4RecConfig, n_items: int) -> None:
        super().__init__()
        self.config = config
        self.n_items = n_items
        layers = config.layers
        mode = config.input_mode
        self.Wy = nn.Parameter(torch.empty(n_items, layers[-1]))  # output item vectors
        self.By = nn.Parameter(torch.zeros(n_items))  # output item biases
        if mode == "embedding":
            self.E = nn.Parameter(torch.empty(n_items, config.embedding_dim))
            n_in = config.embedding_dim
        elif mode == "onehot":
            # one-hot input x W_ih of the first layer == a lookup of rows of a (n_items, 3H) table
            self.Wx0 = nn.Parameter(torch.empty(n_items, 3 * layers[0]))
            self.Wh0 = nn.Parameter(torch.empty(layers[0], 3 * layers[0]))
            self.Bh0 = nn.Parameter(torch.zeros(3 * layers[0]))
            n_in = layers[0]
        else:
            n_in = layers[-1]
        first = 1 if mode == "onehot" else 0
        self.cells = nn.ModuleList(
            nn.GRUCell(layers[i - 1] if i > 0 else n_in, layers[i])
            for i in range(first, len(layers))
        )
        self.drop_embed = nn.Dropout(config.dropout_embed)
        self.drop_hidden = nn.Dropout(config.dropout_hidden)
        self.reset_parameters()

    # ------------------------------------------------------------------ init
    def reset_parameters(self) -> None:
        if self.config.init == "torch":
            for cell in self.cells:
                cell.reset_parameters()
            nn.init.normal_(self.Wy, std=0.05)
            if hasattr(self, "E"):
                nn.init.normal_(self.E, std=0.05)
            if hasattr(self, "Wx0"):
                nn.init.normal_(self.Wx0, std=0.05)
                nn.init.normal_(self.Wh0, std=0.05)
        else:
            if hasattr(self, "E"):
                _init_uniform(self.E)
            if hasattr(self, "Wx0"):
                _init_uniform(self.Wx0, dim1_scale=3)
                _init_uniform(self.Wh0, dim1_scale=3)
            for cell in self.cells:
                # official: sigma over (out/3 gates) for the stacked (3H, in) matrices
                _init_uniform(cell.weight_ih, dim0_scale=3)
                _init_uniform(cell.weight_hh, dim0_scale=3)
                nn.init.zeros_(cell.bias_ih)
                nn.init.zeros_(cell.bias_hh)
            _init_uniform(self.Wy)
        nn.init.zeros_(self.By)
        if hasattr(self, "Bh0"):
            nn.init.zeros_(self.Bh0)

    # ------------------------------------------------------------- pieces
    @property
    def input_table(self) -> Tensor:
        """The table looked up by input items: ``Wy``, ``E`` or the one-hot ``Wx0``."""
        mode = self.config.input_mode
        return self.Wy if mode == "constrained" else (self.E if mode == "embedding" else self.Wx0)

    def init_hidden(self, batch_size: int, device: torch.device | None = None) -> list[Tensor]:
        return [
            torch.zeros(batch_size, h, device=device or self.Wy.device) for h in self.config.layers
        ]

    def step(self, x_emb: Tensor, hidden: list[Tensor]) -> Tensor:
        """One time step from looked-up input rows.

        Parameters
        ----------
        x_emb : (B, E)
            Rows of :attr:`input_table` for the input items.
        hidden : list of (B, H_l)
            Updated in place (list items replaced) with the new states, which carry dropout
            in training, as the official code does.

        Returns
        -------
        (B, D) output of the last layer.
        """
        li = 0
        if self.config.input_mode != "onehot":
            x = self.drop_embed(x_emb)
        else:
            h = hidden[0]
            vx = x_emb + self.Bh0  # (B, 3H): rows of Wx0 = one-hot input x W
            vh = h @ self.Wh0  # (B, 3H)
            vx_x, vx_r, vx_z = vx.chunk(3, 1)
            vh_x, vh_r, vh_z = vh.chunk(3, 1)
            r = torch.sigmoid(vx_r + vh_r)
            z = torch.sigmoid(vx_z + vh_z)
            cand = torch.tanh(r * vh_x + vx_x)
            # official: dropout_p_embed acts on this first (embedding) layer's output, carried
            x = self.drop_embed((1.0 - z) * h + z * cand)
            hidden[0] = x
            li = 1
        for cell in self.cells:
            x = self.drop_hidden(cell(x, hidden[li]))
            hidden[li] = x
            li += 1
        return x

    def output_scores(self, out: Tensor, items: Tensor | None = None) -> Tensor:
        """Scores ``out @ Wy.T + By`` over all items (``items=None``) or the given ones.

        out : (B, D); items : (M,) -> (B, M)
        """
        if items is None:
            return torch.addmm(self.By, out, self.Wy.t())  # (B, N)
        return torch.addmm(self.By[items], out, self.Wy[items].t())  # (B, M)

    # --------------------------------------------------------- inference
    def encode(self, items: Tensor, lengths: Tensor) -> Tensor:
        """Final output for each (left- or right-aligned) padded sequence.

        items : (B, T) item indices, 0 = padding (ignored wherever it stands);
        lengths : (B,) unused beyond validation, kept for API symmetry. Returns (B, D).
        """
        B, T = items.shape
        hidden = self.init_hidden(B, items.device)
        out = torch.zeros(B, self.config.layers[-1], device=items.device)
        table = self.input_table
        for t in range(T):
            col = items[:, t]
            valid = (col > 0).unsqueeze(1)  # (B, 1)
            prev = [h for h in hidden]
            new_out = self.step(table[col], hidden)
            hidden[:] = [torch.where(valid, h, p) for h, p in zip(hidden, prev, strict=True)]
            out = torch.where(valid, new_out, out)
        return out

    def forward(self, items: Tensor, lengths: Tensor) -> Tensor:
        """Scores over all items after each padded sequence: (B, T) -> (B, N)."""
        return self.output_scores(self.encode(items, lengths))

    @torch.no_grad()
    def score(self, batch: QueryBatch) -> Tensor:
        """(B, N) scores after each query's whole history (an empty one: the biases)."""
        T = max(1, int(batch.lengths.max())) if len(batch) else 1
        items, _ = batch.last(T)  # (B, T), left-padded
        return self(items, batch.lengths)

    @torch.no_grad()
    def replay(
        self, data: SequenceData, *, batch_size: int = 512
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Session-parallel evaluation: every sequence replayed once, event by event; at each
        target event (``data.target_mask()``) yield the scores given the events before it.

        Yields ``(scores (b, N), positions (b,))``, ``positions`` indexing ``data.items``.
        The hidden state of a slot is reset when it takes a new sequence.
        """
        device = self.Wy.device
        flags = torch.from_numpy(data.target_mask())
        if not bool(flags.any()):
            return
        sched = TorchSessionSchedule(session_parallel_schedule(data, batch_size), device)
        positions = torch.from_numpy(np.asarray(sched.positions, dtype=np.int64))
        is_target = flags[positions].to(device)
        positions = positions.to(device)
        H = self.init_hidden(sched.n_slots, device)
        table = self.input_table
        for t in range(sched.n_steps):
            a, b = sched.offsets[t], sched.offsets[t + 1]
            H = sched.carry(t, H)
            out = self.step(table[sched.inputs[a:b]], H)
            sel = is_target[a:b]
            if not bool(sel.any()):
                continue
            rows = sel.nonzero().squeeze(1)
            yield self.output_scores(out[rows]), positions[a:b][rows]
