"""One settings object for the engine, overridable by ``MATCHER_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class RankWeights(BaseSettings):
    """Weights of the fixed ranking layer; they are normalised to sum to one."""

    model_config = SettingsConfigDict(env_prefix="MATCHER_WEIGHT_")

    # Semantic : lexical = 0.6 : 0.4 was best across both dev sets (benchmarks/RESULTS.md);
    # the metadata features take the rest.
    semantic: float = 0.42
    lexical: float = 0.28
    domain: float = 0.15
    readiness: float = 0.10
    region: float = 0.05
    # Not a weight of the mean: a technology outside a local or national need's scope ranks
    # below the in-scope ones unless its score is higher by more than this (0: off; the demo's
    # needs, benchmarks/RESULTS.md issue 14 part 4).
    scope_margin: float = 0.15


def _route_env(name: str) -> AliasChoices:
    # MATCHER_ROUTE_<NAME>; the service's older MATCHER_API_* names are still read.
    old = {"matches_per_need": "MATCHER_API_ROUTE_MATCHES_PER_NEED"}.get(
        name, f"MATCHER_API_{name.upper()}"
    )
    return AliasChoices(f"MATCHER_ROUTE_{name.upper()}", old)


class RouteSettings(BaseSettings):
    """Routing rules: who may take which match, how many go out per need, how good they must be.

    Every field is ``MATCHER_ROUTE_<FIELD>``; the older ``MATCHER_API_*`` names still work.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    matches_per_need: int = Field(
        default=3,
        ge=1,
        le=50,
        validation_alias=_route_env("matches_per_need"),
        description="best matches of a need routed to brokers",
    )
    min_score: float = Field(
        default=0.55,
        ge=0.0,
        le=1.0,
        validation_alias=_route_env("min_score"),
        description="a match scoring below this is never routed: below every demo need's intended "
        "answer (lowest 0.59), above off-topic needs (0.48-0.52) (README 'Routing')",
    )
    cross_border_min_level: str = Field(
        default="intermediate",
        validation_alias=_route_env("cross_border_min_level"),
        description="lowest certificate level for a pair across borders",
    )
    large_budget_cny: float = Field(
        default=5_000_000.0,
        ge=0,
        validation_alias=_route_env("large_budget_cny"),
        description="budgets above this (in CNY) need large_budget_min_level",
    )
    large_budget_min_level: str = Field(
        default="advanced",
        validation_alias=_route_env("large_budget_min_level"),
        description="lowest certificate level for a large budget",
    )

    @model_validator(mode="after")
    def _levels(self) -> RouteSettings:
        levels = ("beginner", "intermediate", "advanced")
        for name in ("cross_border_min_level", "large_budget_min_level"):
            if getattr(self, name) not in levels:
                raise ValueError(f"MATCHER_ROUTE_{name.upper()} must be one of {levels}")
        return self


class Settings(BaseSettings):
    """Engine configuration. Every field can be set as ``MATCHER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="MATCHER_", env_file=None, extra="ignore")

    home: Path = Field(default=Path.home() / ".techmatch", description="data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under home"
    )
    data_dir: Path = Field(default=REPO_DATA_DIR, description="shipped reference data")
    model: str = Field(default="all-MiniLM-L6-v2", description="embedding model name or path")
    encoder_backend: str = Field(
        default="onnx",
        description="torch | onnx | onnx-int8-query | onnx-int8; onnx gives the torch vectors "
        "~2x faster; onnx-int8-query keeps them for documents and encodes queries in int8 "
        "(~1.4x faster, top-10 overlap 0.98) (benchmarks/RESULTS.md)",
    )
    batch_size: int = 16
    multilingual_model: str = Field(
        default="use-multilingual-v3",
        description="second, multilingual vector space for Chinese and cross-language pairs: "
        "use-multilingual-v3 | multilingual-e5-small | off (English-only). English pairs keep "
        "the primary model (benchmarks/RESULTS.md, Cross-lingual)",
    )
    language_calibration: bool = Field(
        default=True,
        description="map each document language's multilingual scores onto one scale per query "
        "(corrects the encoders' preference for text in the query's own language)",
    )
    index_kind: str = Field(default="auto", description="flat | hnsw | ivf | ivfpq | auto")
    index_auto_threshold: int = Field(
        default=20_000, description="auto: exact search below this many vectors, HNSW above"
    )
    index_pq_threshold: int = Field(
        default=250_000,
        description="auto: IVF-PQ codes in RAM + exact re-ranking from disk at and above this "
        "many vectors (benchmarks/RESULTS.md, Issue 13: compressed index)",
    )
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_nprobe: int = Field(
        default=128, description="IVF lists probed: 128 keeps recall@10 >= 0.98"
    )
    candidates: int = Field(default=100, description="candidates per channel before ranking")
    faiss_threads: int = Field(
        default=1,
        description="OpenMP threads per FAISS search: 1 keeps single queries from fighting the "
        "encoder's threads (p50 19.8 -> 12.6 ms end to end, benchmarks/RESULTS.md); 0 = all",
    )
    rrf_k: int = Field(default=60, description="reciprocal-rank-fusion constant")
    weights: RankWeights = Field(default_factory=RankWeights)
    route: RouteSettings = Field(default_factory=RouteSettings)
    distance_scale_km: float = Field(
        default=1500.0, description="region fit halves roughly at this distance"
    )
    ranker: str = Field(
        default="auto",
        description="auto: the promoted learned ranker if there is one, else the fixed weights; "
        "fixed: always the fixed weights",
    )
    ranker_min_feedback: int = Field(
        default=200,
        description="judged matches needed before a ranker is trained from feedback or promoted "
        "(below it the fixed weights stay in use)",
    )
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.batch_size < 1:
            raise ValueError("MATCHER_BATCH_SIZE must be at least 1")
        if self.ranker not in ("auto", "fixed"):
            raise ValueError("MATCHER_RANKER must be auto or fixed")
        return self

    @property
    def encoder_id(self) -> str:
        """Identity of the vectors (model + backend): keys the cache and the index metadata."""
        from matcher.embed import DOCUMENT_BACKEND, NATIVE_MODELS  # native: no backend

        backend = DOCUMENT_BACKEND.get(self.encoder_backend, self.encoder_backend)
        return (
            self.model
            if backend == "torch" or self.model in NATIVE_MODELS
            else f"{self.model}+{backend}"
        )

    @property
    def multilingual_enabled(self) -> bool:
        """Whether records are also indexed in the multilingual space."""
        return self.multilingual_model.strip().lower() not in ("", "off", "none", "false", "0")

    @property
    def models_dir(self) -> Path:
        """Where exported model files (ONNX) are kept."""
        return self.home / "models"

    @property
    def sqlite_path(self) -> Path:
        """Path of the default SQLite database file."""
        return self.home / "techmatch.db"

    @property
    def index_dir(self) -> Path:
        """Directory holding the FAISS index files and their metadata."""
        return self.home / "index"

    @property
    def scratch_dir(self) -> Path:
        """Directory of each running process's working files (its lexical indexes on disk)."""
        return self.home / "scratch"

    @property
    def cache_dir(self) -> Path:
        """Directory holding cached embeddings."""
        return self.home / "cache"

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the SQLite file under home."""
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    def ensure_home(self) -> None:
        """Create the data directory tree if needed."""
        for path in (self.home, self.index_dir, self.cache_dir):
            path.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
