"""The configuration aggregate: how one database is segmented, and every change to it.

One aggregate per database (its id derives from the name), so the whole history of a database's
configuration, including deletions and re-configurations, is one stream of versions.
"""

from __future__ import annotations

import math
import re
from datetime import date
from itertools import pairwise
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from service.aggregates.errors import Conflict, FieldError, InvalidCommand, NotFound

METRICS = ("frequency", "monetary", "recency")
#: Cut points beyond any real customer (and beyond what the engine compares exactly).
CUT_LIMITS = {"frequency": 10**9, "recency": 10**9, "monetary": 10**12}
NUMERIC_TYPES = frozenset({"integer", "number"})
DATE_TYPES = frozenset({"date", "timestamp"})

#: The settings of segmentation-rules §1 with their defaults (``None`` = not set).
DEFAULT_SETTINGS: dict[str, Any] = {
    "customer_column": None,
    "name_column": None,
    "date_column": None,
    "sales_column": None,
    "purchase_column": None,
    "grouping": 10,
    "period_months": 12,
    "reference_date": None,
    "thresholds": {"frequency": None, "monetary": None, "recency": None},
    "scorecard_url": None,
}
REQUIRED_SETTINGS = ("customer_column", "date_column", "sales_column")


def validate_cuts(field: str, cuts: Any) -> list[FieldError]:
    """Four finite, strictly increasing numbers, or ``None`` (automatic)."""
    if cuts is None:
        return []
    if (
        not isinstance(cuts, list | tuple)
        or len(cuts) != 4
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in cuts)
    ):
        return [FieldError(field, "must be four numbers or null")]
    if not all(math.isfinite(c) for c in cuts):
        return [FieldError(field, "cut points must be finite numbers")]
    if any(b <= a for a, b in pairwise(cuts)):
        return [FieldError(field, "cut points must be strictly increasing")]
    return []


def validate_thresholds(field: str, thresholds: dict[str, Any]) -> list[FieldError]:
    """Each named metric's cut points; unknown metrics are an error."""
    errors: list[FieldError] = []
    for metric, cuts in thresholds.items():
        if metric not in METRICS:
            errors.append(FieldError(f"{field}.{metric}", "is not a metric"))
            continue
        found = validate_cuts(f"{field}.{metric}", cuts)
        if not found and cuts is not None and metric != "monetary" and cuts[0] < 0:
            found = [
                FieldError(f"{field}.{metric}", f"{metric} cut points count purchases or days: not negative")
            ]
        if not found and cuts is not None and max(abs(c) for c in cuts) >= CUT_LIMITS[metric]:
            found = [
                FieldError(f"{field}.{metric}", f"cut points must be smaller than {CUT_LIMITS[metric]:,}")
            ]
        errors += found
    return errors


def validate_settings(settings: dict[str, Any], columns: dict[str, str]) -> list[FieldError]:
    """The rules of segmentation-rules §1 against the database's columns (name -> type)."""
    errors = [FieldError(name, "is not a setting") for name in sorted(set(settings) - set(DEFAULT_SETTINGS))]
    for name in REQUIRED_SETTINGS:
        if not settings.get(name):
            errors.append(FieldError(name, "is required"))
    for name in ("customer_column", "name_column", "date_column", "sales_column", "purchase_column"):
        column = settings.get(name)
        if column and column not in columns:
            errors.append(FieldError(name, f"column {column!r} does not exist in the database"))
    sales = settings.get("sales_column")
    if sales in columns and columns[sales] not in NUMERIC_TYPES:
        errors.append(FieldError("sales_column", f"column {sales!r} is {columns[sales]}, not numeric"))
    when = settings.get("date_column")
    if when in columns and columns[when] not in DATE_TYPES:
        errors.append(
            FieldError("date_column", f"column {when!r} is {columns[when]}, not a date or timestamp")
        )
    for name in ("customer_column", "name_column", "purchase_column"):
        column = settings.get(name)
        if column and column in (when, sales):
            errors.append(FieldError(name, f"column {column!r} is the date or sales column, not a dimension"))
    if settings.get("grouping") not in (5, 10):
        errors.append(FieldError("grouping", "must be 5 or 10"))
    months = settings.get("period_months")
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 120:
        errors.append(FieldError("period_months", "must be a whole number from 1 to 120"))
    reference = settings.get("reference_date")
    if reference is not None and not _is_iso_date(reference):
        errors.append(FieldError("reference_date", "must be a date YYYY-MM-DD"))
    thresholds = settings.get("thresholds")
    if not isinstance(thresholds, dict):
        errors.append(FieldError("thresholds", "must be an object"))
    else:
        errors += validate_thresholds("thresholds", thresholds)
    url = settings.get("scorecard_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url)):
        errors.append(FieldError("scorecard_url", "must be an http(s) URL, with {customer} for the code"))
    return errors


def _is_iso_date(text: Any) -> bool:
    if not isinstance(text, str) or not _ISO_DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate_dimension_values(
    column_field: str,
    values_field: str,
    column: str,
    values: list[str],
    columns: dict[str, str],
    settings: dict[str, Any],
) -> list[FieldError]:
    """A dimension is any column but the configured date and sales columns; values are text."""
    errors: list[FieldError] = []
    if column not in columns:
        errors.append(FieldError(column_field, f"column {column!r} does not exist in the database"))
    elif column in (settings.get("date_column"), settings.get("sales_column")):
        errors.append(
            FieldError(column_field, f"column {column!r} is the date or sales column, not a dimension")
        )
    if not values:
        errors.append(FieldError(values_field, "must not be empty"))
    return errors


class Configuration(Aggregate):
    """A database's segmentation configuration, its removal rules and its threshold sets."""

    @staticmethod
    def create_id(database: str) -> UUID:
        """The aggregate id of a database's configuration: stable, derived from its name."""
        return uuid5(NAMESPACE_URL, f"segmentation:configuration:{database}")

    class DatabaseConfigured(Aggregate.Created):
        """The first configuration of a database."""

        database: str
        settings: dict[str, Any]
        actor: str
        reason: str | None

    class DatabaseReconfigured(Aggregate.Event):
        """A database configured again after its configuration was deleted."""

        settings: dict[str, Any]
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.settings = dict(self.settings)
            aggregate.configured = True

    class ConfigurationEdited(Aggregate.Event):
        """Some settings changed; ``previous`` holds their old values."""

        changes: dict[str, Any]
        previous: dict[str, Any]
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.settings = {**aggregate.settings, **self.changes}

    class ConfigurationDeleted(Aggregate.Event):
        """The configuration, its removal rules and threshold sets are gone."""

        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            # The settings stay as they were (unused until a new configuration replaces them),
            # so the rules of a deleted configuration can still be resolved for the audit.
            aggregate.configured = False
            for rule in aggregate.rules.values():
                if rule["active"]:
                    rule.update(active=False, restored_by=self.actor, restored_at=self.timestamp.isoformat())
                    rule["restore_reason"] = "configuration deleted"
            for threshold_set in aggregate.threshold_sets.values():
                threshold_set["deleted"] = True

    class CustomersRemoved(Aggregate.Event):
        """A removal rule: customers with any transaction whose ``dimension`` is in ``values``
        (or, with no dimension, whose code is in ``values``) leave the population."""

        rule_id: str
        dimension: str | None
        values: list[str]
        label: str
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.rules[self.rule_id] = {
                "rule_id": self.rule_id,
                "dimension": self.dimension,
                "values": list(self.values),
                "label": self.label,
                "created_by": self.actor,
                "created_at": self.timestamp.isoformat(),
                "reason": self.reason,
                "active": True,
                "restored_by": None,
                "restored_at": None,
                "restore_reason": None,
            }

    class CustomersRestored(Aggregate.Event):
        """A removal rule no longer applies."""

        rule_id: str
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.rules[self.rule_id].update(
                active=False,
                restored_by=self.actor,
                restored_at=self.timestamp.isoformat(),
                restore_reason=self.reason,
            )

    class ThresholdSetCreated(Aggregate.Event):
        """Alternative cut points for views filtered to ``criteria``."""

        threshold_set_id: str
        name: str
        criteria: dict[str, list[str]]
        thresholds: dict[str, Any]
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.threshold_sets[self.threshold_set_id] = {
                "threshold_set_id": self.threshold_set_id,
                "name": self.name,
                "criteria": {k: list(v) for k, v in self.criteria.items()},
                "thresholds": dict(self.thresholds),
                "created_by": self.actor,
                "created_at": self.timestamp.isoformat(),
                "order": self.originator_version,
                "deleted": False,
            }

    class ThresholdSetEdited(Aggregate.Event):
        """Some of a threshold set's fields changed; ``previous`` holds their old values."""

        threshold_set_id: str
        changes: dict[str, Any]
        previous: dict[str, Any]
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.threshold_sets[self.threshold_set_id].update(self.changes)

    class ThresholdSetDeleted(Aggregate.Event):
        """A threshold set no longer applies."""

        threshold_set_id: str
        actor: str
        reason: str | None

        def apply(self, aggregate: Configuration) -> None:
            aggregate.threshold_sets[self.threshold_set_id]["deleted"] = True

    def __init__(self, database: str, settings: dict[str, Any], actor: str, reason: str | None) -> None:
        self.database = database
        self.settings = dict(settings)
        self.configured = True
        self.rules: dict[str, dict[str, Any]] = {}
        self.threshold_sets: dict[str, dict[str, Any]] = {}

    # Commands. Each guards its rules, then triggers one event. Columns (name -> type) are read
    # by the application from the sales database and passed in.

    @classmethod
    def configure(
        cls, database: str, settings: dict[str, Any], columns: dict[str, str], actor: str, reason: str | None
    ) -> Configuration:
        """ConfigureDatabase for a database never configured before."""
        full = complete_settings(settings)
        _raise_if(validate_settings(full, columns))
        return cls._create(
            cls.DatabaseConfigured,
            id=cls.create_id(database),
            database=database,
            settings=full,
            actor=actor,
            reason=reason,
        )

    def reconfigure(
        self, settings: dict[str, Any], columns: dict[str, str], actor: str, reason: str | None
    ) -> None:
        """ConfigureDatabase for a database whose configuration was deleted."""
        if self.configured:
            raise Conflict(f"database {self.database!r} is already configured; edit it with PATCH")
        full = complete_settings(settings)
        _raise_if(validate_settings(full, columns))
        self.trigger_event(self.DatabaseReconfigured, settings=full, actor=actor, reason=reason)

    def edit(self, changes: dict[str, Any], columns: dict[str, str], actor: str, reason: str | None) -> None:
        """EditConfiguration: change any subset of the settings (thresholds merge per metric)."""
        self._require_configured()
        changes = dict(changes)
        if "thresholds" in changes:
            if not isinstance(changes["thresholds"], dict):
                raise InvalidCommand([FieldError("thresholds", "must be an object")])
            _raise_if(validate_thresholds("thresholds", changes["thresholds"]))
            changes["thresholds"] = {**self.settings["thresholds"], **changes["thresholds"]}
        unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
        _raise_if([FieldError(name, "is not a setting") for name in unknown])
        changes = {k: v for k, v in changes.items() if self.settings.get(k) != v}
        if not changes:
            raise InvalidCommand([FieldError("body", "no field would change the configuration")])
        merged = {**self.settings, **changes}
        _raise_if(validate_settings(merged, columns) + self._dependants_errors(merged))
        previous = {k: self.settings.get(k) for k in changes}
        self.trigger_event(
            self.ConfigurationEdited, changes=changes, previous=previous, actor=actor, reason=reason
        )

    def delete(self, actor: str, reason: str | None) -> None:
        """DeleteConfiguration: the settings, rules and threshold sets all go."""
        self._require_configured()
        self.trigger_event(self.ConfigurationDeleted, actor=actor, reason=reason)

    def remove_customers(
        self,
        rule_id: str,
        dimension: str | None,
        values: list[str],
        label: str | None,
        columns: dict[str, str],
        actor: str,
        reason: str | None,
    ) -> None:
        """RemoveCustomers by a dimension's values, or by code when ``dimension`` is None."""
        self._require_configured()
        values = list(dict.fromkeys(values))
        if dimension is None:
            _raise_if([FieldError("values", "must not be empty")] if not values else [])
        else:
            _raise_if(
                validate_dimension_values("dimension", "values", dimension, values, columns, self.settings)
            )
        if label is None:
            label = f"{dimension}: " if dimension else "Customers: "
            label += ", ".join(values[:5]) + (f" and {len(values) - 5} more" if len(values) > 5 else "")
        self.trigger_event(
            self.CustomersRemoved,
            rule_id=rule_id,
            dimension=dimension,
            values=values,
            label=label,
            actor=actor,
            reason=reason,
        )

    def restore_customers(self, rule_id: str, actor: str, reason: str | None) -> None:
        """RestoreCustomers: a removal rule stops applying (it stays in the history)."""
        self._require_configured()
        rule = self.rules.get(rule_id)
        if rule is None or not rule["active"]:
            raise NotFound(f"no active removal rule {rule_id!r} in database {self.database!r}")
        self.trigger_event(self.CustomersRestored, rule_id=rule_id, actor=actor, reason=reason)

    def create_threshold_set(
        self,
        threshold_set_id: str,
        name: str,
        criteria: dict[str, list[str]],
        thresholds: dict[str, Any],
        columns: dict[str, str],
        actor: str,
        reason: str | None,
    ) -> None:
        """CreateThresholdSet."""
        self._require_configured()
        name = name.strip()
        criteria = {k: list(dict.fromkeys(v)) for k, v in criteria.items()}
        _raise_if(self._threshold_set_errors(None, name, criteria, thresholds, columns))
        self.trigger_event(
            self.ThresholdSetCreated,
            threshold_set_id=threshold_set_id,
            name=name,
            criteria=criteria,
            thresholds=thresholds,
            actor=actor,
            reason=reason,
        )

    def edit_threshold_set(
        self,
        threshold_set_id: str,
        changes: dict[str, Any],
        columns: dict[str, str],
        actor: str,
        reason: str | None,
    ) -> None:
        """EditThresholdSet: any subset of name, criteria, thresholds (each replaced whole)."""
        current = self._live_threshold_set(threshold_set_id)
        unknown = sorted(set(changes) - {"name", "criteria", "thresholds"})
        _raise_if([FieldError(name, "is not an editable field of a threshold set") for name in unknown])
        if "name" in changes and isinstance(changes["name"], str):
            changes = {**changes, "name": changes["name"].strip()}
        if "criteria" in changes:
            changes = {
                **changes,
                "criteria": {k: list(dict.fromkeys(v)) for k, v in changes["criteria"].items()},
            }
        changes = {k: v for k, v in changes.items() if current.get(k) != v}
        if not changes:
            raise InvalidCommand([FieldError("body", "no field would change the threshold set")])
        merged = {**current, **changes}
        _raise_if(
            self._threshold_set_errors(
                threshold_set_id, merged["name"], merged["criteria"], merged["thresholds"], columns
            )
        )
        previous = {k: current[k] for k in changes}
        self.trigger_event(
            self.ThresholdSetEdited,
            threshold_set_id=threshold_set_id,
            changes=changes,
            previous=previous,
            actor=actor,
            reason=reason,
        )

    def delete_threshold_set(self, threshold_set_id: str, actor: str, reason: str | None) -> None:
        """DeleteThresholdSet."""
        self._live_threshold_set(threshold_set_id)
        self.trigger_event(
            self.ThresholdSetDeleted, threshold_set_id=threshold_set_id, actor=actor, reason=reason
        )

    # Queries on the state.

    @property
    def active_rules(self) -> list[dict[str, Any]]:
        """Removal rules in force, oldest first."""
        return [rule for rule in self.rules.values() if rule["active"]]

    @property
    def live_threshold_sets(self) -> list[dict[str, Any]]:
        """Threshold sets not deleted, oldest first."""
        return [s for s in self.threshold_sets.values() if not s["deleted"]]

    def _dependants_errors(self, settings: dict[str, Any]) -> list[FieldError]:
        """Removal rules and threshold sets must stay on dimensions under new settings."""
        taken = {settings.get("date_column"), settings.get("sales_column")}
        errors = [
            FieldError(
                "date_column" if rule["dimension"] == settings.get("date_column") else "sales_column",
                f"removal rule {rule['rule_id']} uses column {rule['dimension']!r} as a dimension",
            )
            for rule in self.active_rules
            if rule["dimension"] in taken
        ]
        errors += [
            FieldError(
                "date_column" if column == settings.get("date_column") else "sales_column",
                f"threshold set {s['name']!r} uses column {column!r} in its criteria",
            )
            for s in self.live_threshold_sets
            for column in s["criteria"]
            if column in taken
        ]
        return errors

    def _require_configured(self) -> None:
        if not self.configured:
            raise NotFound(f"database {self.database!r} is not configured")

    def _live_threshold_set(self, threshold_set_id: str) -> dict[str, Any]:
        self._require_configured()
        found = self.threshold_sets.get(threshold_set_id)
        if found is None or found["deleted"]:
            raise NotFound(f"no threshold set {threshold_set_id!r} in database {self.database!r}")
        return found

    def _threshold_set_errors(
        self,
        threshold_set_id: str | None,
        name: str,
        criteria: dict[str, list[str]],
        thresholds: dict[str, Any],
        columns: dict[str, str],
    ) -> list[FieldError]:
        errors: list[FieldError] = []
        if not name or not name.strip():
            errors.append(FieldError("name", "must not be empty"))
        elif any(
            s["name"].casefold() == name.casefold() and s["threshold_set_id"] != threshold_set_id
            for s in self.live_threshold_sets
        ):
            errors.append(FieldError("name", f"a threshold set named {name!r} already exists"))
        if not criteria:
            errors.append(FieldError("criteria", "must name at least one column"))
        for column, values in criteria.items():
            errors += validate_dimension_values(
                f"criteria.{column}", f"criteria.{column}", column, values, columns, self.settings
            )
        errors += validate_thresholds("thresholds", thresholds)
        return errors


def complete_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The given settings over the defaults; thresholds merge per metric."""
    full = {**DEFAULT_SETTINGS, **settings}
    given = settings.get("thresholds")
    if given is None:
        full["thresholds"] = dict(DEFAULT_SETTINGS["thresholds"])
    elif isinstance(given, dict):
        full["thresholds"] = {**DEFAULT_SETTINGS["thresholds"], **given}
    return full


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidCommand(errors)
