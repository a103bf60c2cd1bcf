"""Tests, the local dbt Cloud emulator and its dbt project."""
