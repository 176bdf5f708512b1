"""`videofusion search`: a query → the k nearest videos of an embeddings folder (`embed`'s), by cosine.

A query is a video file, a video of the folder (`--id`) or, for a model with a text space, a caption. The
folder's spaces decide what can be asked (`--space` is where the gallery's vectors are, `--query-modality`
which of the query's modalities counts):

- a classifier's `fused` space: the whole query video; or its frames only (`--query-modality video`: its
  sound silenced, as `evaluate --silence-audio` does). Its sound alone has no vector in that space;
- a pretrained run's modality spaces (`audio`, `video`, `text`): the query's vector in its modality's space
  (`--query-modality audio`: its sound; `video`: its frames; a caption: the text space) against the
  gallery's vectors in `--space`: audio → video finds the clips that look like this sounds. Without a
  `--query-modality`, the query's vector in the gallery's own space.

A video or caption query is embedded by the model the folder names (`embeddings.json`), as `embed` did;
a search by `--id` leaves that video out of its own results. Search is exact (a matrix product) up to
`vector_index.EXACT_MAX_ROWS` vectors, and by an approximate index beyond (`vector_index.py`).

Example:

>>> searcher = Searcher("embeddings/demo")  # doctest: +SKIP
>>> searcher.search(Query(video="datasets/demo/raw/videos/00024_disk-left-low.mp4"), top_k=1)  # doctest: +SKIP
[{'query': '...00024_disk-left-low.mp4', 'rank': 1, 'id': 'videos/00024_disk-left-low.mp4', 'score': 1.0, ...}]
"""

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import logging

from videofusion import fileio
from videofusion.contract import modalities
from videofusion.ingest import media
from videofusion.serving import embed, embedders, embedding_folder, vector_index

INDEX_DIR = ".index"  # in the embeddings folder: the approximate index of each space searched that way
ALL = "all"  # `Query.modality`: every modality of the query (the gallery's space)
QUERY_MODALITIES = (ALL, modalities.AUDIO, modalities.VIDEO)


class QueryError(ValueError):
    """A query this folder cannot answer (a space it lacks, a file that can't be decoded, an unknown id)."""


@dataclasses.dataclass(frozen=True)
class Query:
    """One of `video` (a file), `clip_id` (a video of the folder) or `caption`; `modality` of the query counts."""

    video: Optional[str] = None
    clip_id: Optional[str] = None
    caption: Optional[str] = None
    modality: str = ALL

    def __post_init__(self):
        if sum(value is not None for value in (self.video, self.clip_id, self.caption)) != 1:
            raise QueryError("a query is one of a video file, --id or --caption")
        if self.modality not in QUERY_MODALITIES:
            raise QueryError(f"--query-modality {self.modality!r} is not one of {', '.join(QUERY_MODALITIES)}")

    def describe(self) -> str:
        """What the results' `query` field says."""
        if self.caption is not None:
            return f"caption:{self.caption}"
        what = self.video if self.video is not None else f"id:{self.clip_id}"
        return what if self.modality == ALL else f"{what} ({self.modality})"


def default_space(spaces: Dict[str, int]) -> str:
    """The gallery space when none is asked: `fused`, else `video`, else the first.

    >>> default_space({"audio": 64, "video": 64}), default_space({"fused": 128})
    ('video', 'fused')
    """
    for space in (embedders.FUSED, modalities.VIDEO):
        if space in spaces:
            return space
    return next(iter(spaces))


class Searcher:
    """An embeddings folder's gallery space, indexed, and the model that embeds queries (loaded when needed)."""

    def __init__(self, index_dir: str, space: Optional[str] = None, index_kind: str = "auto"):
        self.folder = embedding_folder.EmbeddingFolder(index_dir)
        self.space = space or default_space(self.folder.spaces)
        if self.space not in self.folder.spaces:
            raise QueryError(f"{index_dir} has no space {self.space!r}: it has {', '.join(self.folder.spaces)}")
        self._index = self._load_index(index_kind)
        self._embedder: Optional[embedders.Embedder] = None

    def _load_index(self, kind: str):
        """The gallery's index: exact, or the FAISS index kept in the folder (`.index/<space>.faiss`, built
        at the first search and rebuilt when the folder's rows change)."""
        vectors = self.folder.vectors(self.space)
        if vector_index.resolve_kind(kind, len(vectors)) == "exact":
            return vector_index.ExactIndex(vectors)
        stamp = {"rows": len(vectors), "parts": self.folder.summary["parts"], "model": self.folder.model}
        path = os.path.join(self.folder.folder, INDEX_DIR, f"{self.space}.faiss")
        stamp_path = path + ".json"
        if fileio.isfile(path) and fileio.isfile(stamp_path) and fileio.read_json(stamp_path) == stamp:
            return vector_index.FaissIndex.load(path)
        logging.info("Building the FAISS index of %d %s vectors (kept in %s)", len(vectors), self.space, path)
        index = vector_index.FaissIndex(vectors)
        fileio.makedirs(os.path.dirname(path))
        index.save(path)
        fileio.write_json(stamp_path, stamp)
        return index

    def _model(self) -> embedders.Embedder:
        if self._embedder is None:
            model = self.folder.model
            self._embedder = embedders.load_embedder(model["path"])
            if self._embedder.info.version != model["version"]:
                raise QueryError(f"{model['path']} has changed since {self.folder.folder} was embedded (version "
                                 f"{self._embedder.info.version}, not {model['version']}): run `videofusion embed` "
                                 "again")
        return self._embedder

    def query_space(self, query: Query) -> Tuple[str, bool]:
        """(the space of the query's vector, whether its sound is silenced) for `query`."""
        spaces = self.folder.spaces
        if query.caption is not None:
            if modalities.TEXT not in spaces:
                raise QueryError(f"{self.folder.folder} has no text space ({', '.join(spaces)}): caption queries "
                                 "need a model pretrained with text (`videofusion pretrain` with "
                                 "model.modalities including text)")
            return modalities.TEXT, False
        if query.modality == ALL:
            return self.space, False
        if query.modality in spaces:
            return query.modality, False
        if query.modality == modalities.VIDEO and embedders.FUSED in spaces and query.video is not None:
            return embedders.FUSED, True
        raise QueryError(
            f"{self.folder.folder} has no {query.modality} space ({', '.join(spaces)}): a classifier's fused space "
            "takes a whole video, or its frames only from a file (--query-modality video); the audio alone needs "
            "a pretrained run's modality spaces (`videofusion embed --model` a `videofusion pretrain` run)"
        )

    def query_vector(self, query: Query) -> Tuple[np.ndarray, Optional[int]]:
        """(the query's vector, the folder's row to leave out of the results or None)."""
        space, silent = self.query_space(query)
        if query.clip_id is not None:
            try:
                row = self.folder.find(query.clip_id)
            except KeyError as error:
                raise QueryError(error.args[0]) from error
            return np.asarray(self.folder.vectors(space)[row]), row
        model = self._model()
        if query.caption is not None:
            caption_record = embedders.blank_record(query.caption, model.params.sample_rate)
            return model.embed_records([caption_record])[space][0], None
        try:
            records = model.records(query.video)
        except media.MediaError as error:
            raise QueryError(f"{query.video}: {error.reason}") from error
        if silent:
            records = [embedders.silenced(record) for record in records]
        _, vectors = embed.average_records([({}, records)], model.embed_records)
        return vectors[space][0], None

    def search(self, query: Query, top_k: int = 10) -> List[dict]:
        """The `top_k` nearest videos of the gallery, best first: `{query, rank, id, path, label, split, score}`."""
        vector, leave_out = self.query_vector(query)
        scores, rows = self._index.search(vector[np.newaxis], top_k + (leave_out is not None))
        results = []
        for score, row in zip(scores[0], rows[0]):
            if row < 0 or row == leave_out or len(results) == top_k:  # < 0: an index with fewer results
                continue
            found = self.folder.rows[row]
            results.append({"query": query.describe(), "rank": len(results) + 1, "id": found["id"],
                            "path": found["path"], "label": found["label"], "split": found["split"],
                            "score": round(float(score), 6)})
        return results
