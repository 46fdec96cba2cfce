from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    STAFF = "staff", "Staff"
    CUSTOMER = "customer", "Customer"


class TaxTreatment(models.TextChoices):
    """How a customer's invoices are taxed: normally, or at 0 % with a legal note (reverse
    charge: the customer accounts for the tax; exempt: no tax is due)."""

    STANDARD = "standard", "Standard"
    REVERSE_CHARGE = "reverse_charge", "Reverse charge"
    EXEMPT = "exempt", "Tax exempt"


class PriceModeChoice(models.TextChoices):
    """Whether quoted prices are before tax (exclusive) or include it (inclusive); the
    same values as `core.tax.PriceMode`."""

    EXCLUSIVE = "exclusive", "Prices exclude tax"
    INCLUSIVE = "inclusive", "Prices include tax"


class TaxRate(models.Model):
    """A rate quote lines can carry ("VAT 20 %", "Exempt 0 %"). Lines keep a copy of the
    name and percentage, so editing or retiring a rate never changes a quote or invoice
    already made; a retired rate (`is_active` off) is only no longer offered."""

    name = models.CharField(max_length=100, unique=True)
    percentage = models.DecimalField(max_digits=5, decimal_places=2)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["percentage", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percentage__gte=0) & Q(percentage__lte=100),
                name="tax_rate_percentage_0_100",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=200)
    # Optional so a customer can be quoted before anyone knows where invoices go; sending
    # an invoice requires it.
    billing_email = models.EmailField(blank=True, default="")
    contact_name = models.CharField(max_length=200, blank=True, default="")
    address = models.TextField(blank=True, default="")
    tax_id = models.CharField(max_length=64, blank=True, default="")
    # ISO 3166-1 alpha-2 ("DE"), for e-invoices; blank when unknown.
    country = models.CharField(max_length=2, blank=True, default="")
    tax_treatment = models.CharField(
        max_length=16, choices=TaxTreatment.choices, default=TaxTreatment.STANDARD
    )
    payment_terms_days = models.PositiveSmallIntegerField(default=14)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(payment_terms_days__lte=365), name="customer_payment_terms_max_365"
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:  # Django's contract for custom users (createsuperuser, tests).
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=16, choices=Role.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["role"]

    objects = UserManager()

    class Meta:
        constraints = [
            # A customer user belongs to exactly one customer; staff belong to none.
            models.CheckConstraint(
                condition=(Q(role=Role.CUSTOMER) & Q(customer__isnull=False))
                | (~Q(role=Role.CUSTOMER) & Q(customer__isnull=True)),
                name="user_customer_iff_customer_role",
            ),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_staff_member(self) -> bool:
        """Admins and staff: the business's own people."""
        return self.role in (Role.ADMIN, Role.STAFF)

    @property
    def is_customer(self) -> bool:
        return self.role == Role.CUSTOMER


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored: a leaked database row cannot be used
    to call the API. The token has 256 bits of entropy, so a fast hash is enough."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"


class Business(models.Model):
    """Who is sending the invoices: one row (pk 1), edited by admins on the settings page.
    A blank field falls back to its environment variable (see `business.py`), so a fresh
    install works before anyone opens the settings."""

    name = models.CharField(max_length=200, blank=True, default="")
    logo = models.FileField(upload_to="branding/", blank=True, default="")
    address = models.TextField(blank=True, default="")
    tax_id = models.CharField(max_length=64, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    price_mode = models.CharField(
        max_length=16, choices=PriceModeChoice.choices, default=PriceModeChoice.EXCLUSIVE
    )
    # The legal notes on a 0 % invoice; blank = the default wording (see business.py).
    reverse_charge_note = models.CharField(max_length=500, blank=True, default="")
    tax_exempt_note = models.CharField(max_length=500, blank=True, default="")
    send_deposits_automatically = models.BooleanField(default=False)
    sender_name = models.CharField(max_length=200, blank=True, default="")
    reply_to = models.EmailField(blank=True, default="")
    payment_terms_days = models.PositiveSmallIntegerField(null=True, blank=True)
    invoice_number_format = models.CharField(max_length=100, blank=True, default="")
    credit_note_number_format = models.CharField(max_length=100, blank=True, default="")
    # Days relative to the due date, comma-separated ("-3,0,7,14"); blank = REMINDER_DAYS.
    reminder_days = models.CharField(max_length=200, blank=True, default="")
    bank_details = models.TextField(blank=True, default="")
    notify_daily_digest = models.BooleanField(default=True)
    notify_payment_received = models.BooleanField(default=True)
    notify_payment_failed = models.BooleanField(default=True)
    # Admins may not use the portal until they have set up two-factor authentication.
    require_two_factor_for_admins = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "business"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="business_single_row")]

    def __str__(self) -> str:
        return self.name or "Business"


class SecurityEventKind(models.TextChoices):
    """What the security log records. Never a secret: no password, code or token."""

    SIGN_IN = "sign_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    LOCKOUT = "lockout", "Locked out"
    TWO_FACTOR_FAILED = "two_factor_failed", "Wrong two-factor code"
    TWO_FACTOR_ENABLED = "two_factor_enabled", "Two-factor enabled"
    TWO_FACTOR_DISABLED = "two_factor_disabled", "Two-factor disabled"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", "Recovery codes replaced"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    ROLE_CHANGED = "role_changed", "Role changed"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    USER_REACTIVATED = "user_reactivated", "User reactivated"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    EXPORT = "export", "Data exported"
    SETTING_CHANGED = "setting_changed", "Security setting changed"


class SecurityEvent(models.Model):
    """One line of the security log admins read (see `security.security_event`). The
    people are kept by reference and by email, so the line still says who after an
    account changes; `detail` is a sentence for a person, never a secret."""

    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=32, choices=SecurityEventKind.choices)
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    target = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_email = models.CharField(max_length=254, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True, default="")
    detail = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["kind", "-at"]),
            models.Index(fields=["target", "-at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in SecurityEventKind]),
                name="security_event_kind_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}"
