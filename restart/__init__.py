"""dbt-cloud-restart: restart a failed dbt Cloud job from its point of failure."""

__version__ = "0.1.0"
