"""The sequence layers' torch modules (``layers/recurrent.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from ..spec import call


class TokenEmbedding(nn.Embedding):
    """nn.Embedding that accepts token ids stored as floats, as dataset inputs are."""

    def forward(self, x: Tensor) -> Tensor:
        """Look up each id; ids outside the table are torch's error, caught earlier by the data checks."""
        return super().forward(x.long())


class Recurrent(nn.Module):
    """A torch RNN/LSTM/GRU, batch first, giving the whole output sequence or the last step.

    The last step is the final hidden state of the top layer, forward and backward directions
    concatenated, so a bidirectional network's backward half has read the whole sequence too.
    """

    def __init__(self, kind: str, features: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 output: str = "last", dropout: float = 0.0, nonlinearity: str = "tanh"):
        super().__init__()
        cell = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[kind]
        extra = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
        self.rnn = cell(features, hidden_size, num_layers, batch_first=True,
                        bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0, **extra)
        self.sequence = output == "sequence"
        self.directions = 2 if bidirectional else 1

    def forward(self, x: Tensor) -> Tensor:
        """(batch, time, features) -> (batch, time, hidden) or (batch, hidden); hidden doubles if bidirectional."""
        out, state = self.rnn(x)
        if self.sequence:
            return out
        hidden = state[0] if isinstance(state, tuple) else state
        return hidden[-self.directions:].transpose(0, 1).reshape(x.shape[0], -1)


def embed(ins, p):
    """TokenEmbedding."""
    return call(TokenEmbedding, p.num_embeddings, p.dim)


def recurrent(kind: str, ins, p) -> Recurrent:
    """Recurrent over torch's ``kind`` (RNN, LSTM, GRU)."""
    extra = {"nonlinearity": p.nonlinearity} if kind == "RNN" else {}
    return call(Recurrent, kind, ins[0][1], p.hidden_size, num_layers=p.num_layers, bidirectional=p.bidirectional,
                output=p.output, dropout=p.dropout, **extra)
