"""Django models covering each field whose SQLite spelling differs from PostgreSQL's:
datetimes (aware, under USE_TZ, and naive), dates, times, durations (integer microseconds),
decimals (text, stored by SQLite's NUMERIC affinity as REAL or INTEGER), booleans, UUIDs
(32 hex digits, no dashes), JSON (text), binary, wide integers, floats and unicode text."""

import django
from django.db import models


def _check(q, name):
    """CheckConstraint's argument is ``condition`` from Django 5.1, ``check`` before."""
    key = "condition" if django.VERSION >= (5, 1) else "check"
    return models.CheckConstraint(**{key: q, "name": name})


class Owner(models.Model):
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        app_label = "django_app"


class Sample(models.Model):
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="samples")
    title = models.CharField(max_length=60)
    at = models.DateTimeField(null=True)            # written aware, USE_TZ = True: UTC text
    day = models.DateField(null=True)
    clock = models.TimeField(null=True)
    span = models.DurationField(null=True)           # bigint microseconds in SQLite
    amount = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    flag = models.BooleanField(default=False)
    maybe = models.BooleanField(null=True)
    token = models.UUIDField(null=True)              # char(32), hex without dashes
    doc = models.JSONField(null=True)
    blob = models.BinaryField(null=True)
    big = models.BigIntegerField(null=True)
    ratio = models.FloatField(null=True)
    small = models.PositiveSmallIntegerField(null=True)

    class Meta:
        app_label = "django_app"
        constraints = [
            models.UniqueConstraint(fields=["owner", "title"], name="sample_owner_title_uniq"),
            _check(models.Q(small__lte=1000), "sample_small_lte_1000"),
        ]


class LocalEvent(models.Model):
    """Written with USE_TZ = False: naive local times, kept as written."""

    at = models.DateTimeField()

    class Meta:
        app_label = "django_app"
