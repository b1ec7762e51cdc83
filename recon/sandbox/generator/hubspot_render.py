"""The HubSpot side of a world: owners, the company properties, and per cluster the
companies, contacts and deals (with the identity of the cluster's Stripe customers).

A cluster is closed: its domains, e-mail addresses and ids carry the cluster's token, so no
record of one cluster can match a customer of another, and the findings of a cluster are
computed from the cluster alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict

from recon.sandbox.generator.answers import (
    EARLY_LIFECYCLE,
    STATUS_ORDER,
    CompanyFacts,
    ContactFacts,
    DealFacts,
    fmt2,
)
from recon.sandbox.generator.catalogue import FREE_EMAIL_DOMAINS
from recon.sandbox.generator.clock import DAY, iso
from recon.sandbox.generator.ids import IdMaker
from recon.sandbox.generator.model import CustomerSim

Obj = dict[str, Any]

COMPANY_BASE = 20_000_000_000
CONTACT_BASE = 30_000_000_000
DEAL_BASE = 40_000_000_000
OWNER_BASE = 70_000_000
PER_CLUSTER = 16  # id slots per cluster and object type

STATUS_OPTIONS = (*STATUS_ORDER, "none")
LIFECYCLE_OPTIONS = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)

FIRST = (
    "alex",
    "sam",
    "maria",
    "jonas",
    "li",
    "priya",
    "tom",
    "ana",
    "kenji",
    "fatima",
    "noah",
    "emma",
    "lucas",
    "mia",
    "omar",
    "sofia",
    "yuki",
    "lena",
    "david",
    "chloe",
)
LAST = (
    "smith",
    "müller",
    "garcia",
    "chen",
    "kumar",
    "rossi",
    "tanaka",
    "novak",
    "silva",
    "brown",
    "dubois",
    "khan",
    "jensen",
    "okafor",
    "kowalski",
    "nguyen",
    "larsen",
    "haddad",
)
WORD1 = (
    "bright",
    "north",
    "blue",
    "swift",
    "clear",
    "green",
    "iron",
    "silver",
    "rapid",
    "quiet",
    "bold",
    "lumen",
    "cedar",
    "harbor",
    "summit",
    "pixel",
    "atlas",
    "nova",
)
WORD2 = (
    "forge",
    "wind",
    "labs",
    "works",
    "stack",
    "field",
    "logic",
    "bridge",
    "wave",
    "path",
    "grid",
    "craft",
    "point",
    "scale",
    "mint",
    "loop",
)
TLDS = (".com", ".io", ".co", ".net", ".app", ".de", ".fr", ".co.uk")
IDN_WORDS = ("münchen", "bücher", "café", "zürich", "straße", "körper", "señal", "øresund")
INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "INTERNET",
    "FINANCIAL_SERVICES",
    "RETAIL",
    "MARKETING_AND_ADVERTISING",
    "HOSPITAL_HEALTH_CARE",
    "EDUCATION_MANAGEMENT",
    None,
)
CITIES = ("Berlin", "London", "Austin", "Tokyo", "Kuwait City", "Paris", "Toronto", "Madrid", None)
OPEN_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)


def ascii_name(s: str) -> str:
    return s.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae").replace("ø", "o")


# --- owners and properties ------------------------------------------------------------------


@dataclass
class Owners:
    records: list[Obj]
    active: list[str]
    archived: list[str]

    @property
    def active_set(self) -> frozenset[str]:
        return frozenset(self.active)


def make_owners(n_customers: int, seed: int, now: int, history_start: int) -> Owners:
    rng = random.Random(f"recon-world:{seed}:owners")
    n = max(8, n_customers // 40)
    records: list[Obj] = []
    active: list[str] = []
    archived: list[str] = []
    for j in range(n):
        oid = str(OWNER_BASE + 1 + j)
        first, last = rng.choice(FIRST), ascii_name(rng.choice(LAST))
        is_archived = j % 6 == 5
        created = history_start - rng.randint(30, 400) * DAY
        updated = rng.randint(created, now - DAY)
        records.append(
            {
                "id": oid,
                "email": f"{first}.{last}.{j}@recon-sandbox.example",
                "type": "PERSON",
                "firstName": first.capitalize(),
                "lastName": last.capitalize(),
                "userId": 9_000_000 + j,
                "userIdIncludingInactive": 9_000_000 + j,
                "createdAt": iso(created, rng.randrange(1000)),
                "updatedAt": iso(updated, rng.randrange(1000)),
                "archived": is_archived,
                "teams": [
                    {
                        "id": str(101 + j % 4),
                        "name": ("Sales EMEA", "Sales AMER", "Sales APAC", "Account management")[
                            j % 4
                        ],
                        "primary": True,
                    }
                ],
            }
        )
        (archived if is_archived else active).append(oid)
    return Owners(records, active, archived)


def _prop(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    *,
    group: str = "companyinformation",
    options: tuple[str, ...] = (),
    hubspot_defined: bool = True,
    description: str = "",
    unique: bool = False,
) -> Obj:
    out: Obj = {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": [
            {
                "label": o.replace("_", " ").capitalize(),
                "value": o,
                "displayOrder": i,
                "hidden": False,
            }
            for i, o in enumerate(options)
        ],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": name == "hubspot_owner_id",
        "hasUniqueValue": unique,
        "hidden": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": name in ("hs_object_id", "createdate", "hs_lastmodifieddate"),
        },
        "formField": not hubspot_defined,
        "createdAt": "2024-03-11T09:30:00.000Z",
        "updatedAt": "2024-03-11T09:30:00.000Z",
        "archived": False,
    }
    if hubspot_defined:
        out["hubspotDefined"] = True
    return out


def company_properties() -> Obj:
    return {
        "results": [
            _prop("name", "Name", "string", "text"),
            _prop("domain", "Company domain name", "string", "text"),
            _prop(
                "lifecyclestage",
                "Lifecycle stage",
                "enumeration",
                "radio",
                options=LIFECYCLE_OPTIONS,
            ),
            _prop("hubspot_owner_id", "Company owner", "enumeration", "select"),
            _prop("createdate", "Create date", "datetime", "date"),
            _prop("hs_lastmodifieddate", "Last modified date", "datetime", "date"),
            _prop("hs_object_id", "Record ID", "number", "number"),
            _prop(
                "industry",
                "Industry",
                "enumeration",
                "select",
                options=tuple(i for i in INDUSTRIES if i),
            ),
            _prop("city", "City", "string", "text"),
            _prop(
                "stripe_customer_id",
                "Stripe customer id",
                "string",
                "text",
                group="billing",
                hubspot_defined=False,
                description="The Stripe customer this company bills as (written by recon).",
            ),
            _prop(
                "mrr",
                "MRR",
                "number",
                "number",
                group="billing",
                hubspot_defined=False,
                description="Monthly recurring revenue in USD (written by recon).",
            ),
            _prop(
                "subscription_status",
                "Subscription status",
                "enumeration",
                "select",
                group="billing",
                options=STATUS_OPTIONS,
                hubspot_defined=False,
                description="Derived Stripe subscription status (written by recon).",
            ),
        ]
    }


# --- a cluster --------------------------------------------------------------------------------


def hubspot_number(x: Decimal) -> str:
    """A number as HubSpot shows it: no trailing zeros (``1234.5``, ``99``)."""
    s = fmt2(x)
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return s or "0"


@dataclass
class CustomerView:
    """What the HubSpot side needs to know of one Stripe customer."""

    cs: CustomerSim
    mrr_reporting: Decimal
    status: str
    history: list[Decimal]

    @property
    def ever_paid(self) -> bool:
        return any(h > 0 for h in self.history)


@dataclass
class Cluster:
    index: int
    rng: random.Random
    ids: IdMaker
    owners: Owners
    now: int
    start: int  # earliest plausible createdate
    token: str = ""
    companies: list[Obj] = field(default_factory=list)
    contacts: list[Obj] = field(default_factory=list)
    deals: list[Obj] = field(default_factory=list)
    company_facts: list[CompanyFacts] = field(default_factory=list)
    contact_facts: list[ContactFacts] = field(default_factory=list)
    deal_facts: list[DealFacts] = field(default_factory=list)
    fake_customer_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        letters = "".join(self.rng.choices("abcdefghjkmnpqrstuvwxyz", k=2))
        n, digits = self.index, ""
        while True:
            n, r = divmod(n, 36)
            digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
            if n == 0:
                break
        self.token = digits + letters

    # --- names ---------------------------------------------------------------------------

    def company_name(self) -> tuple[str, str]:
        w1, w2 = self.rng.choice(WORD1), self.rng.choice(WORD2)
        return f"{w1.capitalize()} {w2.capitalize()}", f"{w1}{w2}"

    def domain(self, stem: str, suffix: str = "") -> str:
        return f"{stem}-{self.token}{suffix}{self.rng.choice(TLDS)}"

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def free_email(self) -> str:
        first, last = self.person()
        dom = self.rng.choice(
            (
                "gmail.com",
                "gmail.com",
                "outlook.com",
                "yahoo.com",
                "icloud.com",
                "gmx.de",
                "hotmail.com",
                "proton.me",
            )
        )
        assert dom in FREE_EMAIL_DOMAINS
        return f"{ascii_name(first)}.{ascii_name(last)}.{self.token}@{dom}"

    def times(self, not_before: int) -> tuple[int, int]:
        created = min(self.now - DAY, max(self.start, not_before) + self.rng.randint(0, 20) * DAY)
        created += self.rng.randint(0, DAY)
        span = self.now - created
        modified = created + int(span * (1 - self.rng.random() ** 3))
        return created, min(modified, self.now - 60)

    # --- records -------------------------------------------------------------------------

    def add_company(
        self,
        name: str,
        domain: str | None,
        *,
        not_before: int,
        stripe_customer_id: str | None = None,
        lifecyclestage: str | None = None,
        mrr: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        archived: bool = False,
    ) -> str:
        cid = str(COMPANY_BASE + self.index * PER_CLUSTER + len(self.companies))
        created, modified = self.times(not_before)
        props: Obj = {
            "city": self.rng.choice(CITIES),
            "createdate": iso(created, self.rng.randrange(1000)),
            "domain": domain,
            "hs_lastmodifieddate": iso(modified, self.rng.randrange(1000)),
            "hs_object_id": cid,
            "hubspot_owner_id": owner,
            "industry": self.rng.choice(INDUSTRIES),
            "lifecyclestage": lifecyclestage,
            "mrr": mrr,
            "name": name,
            "stripe_customer_id": stripe_customer_id,
            "subscription_status": status,
        }
        rec: Obj = {
            "id": cid,
            "properties": props,
            "createdAt": props["createdate"],
            "updatedAt": props["hs_lastmodifieddate"],
            "archived": archived,
        }
        if archived:
            rec["archivedAt"] = props["hs_lastmodifieddate"]
        self.companies.append(rec)
        self.company_facts.append(
            CompanyFacts(
                cid, archived, stripe_customer_id, domain, lifecyclestage, mrr, status, owner
            )
        )
        return cid

    def set_company(self, cid: str, **props: str | None) -> None:
        for i, rec in enumerate(self.companies):
            if rec["id"] == cid:
                rec["properties"].update(props)
                f = self.company_facts[i]
                self.company_facts[i] = CompanyFacts(
                    f.id,
                    f.archived,
                    rec["properties"]["stripe_customer_id"],
                    rec["properties"]["domain"],
                    rec["properties"]["lifecyclestage"],
                    rec["properties"]["mrr"],
                    rec["properties"]["subscription_status"],
                    rec["properties"]["hubspot_owner_id"],
                )

    def company_prop(self, cid: str, name: str) -> Any:
        return next(r["properties"][name] for r in self.companies if r["id"] == cid)

    def add_contact(
        self,
        email: str | None,
        *,
        not_before: int,
        primary: str | None = None,
        unlabeled: tuple[str, ...] = (),
        archived: bool = False,
        name: tuple[str, str] | None = None,
    ) -> None:
        kid = str(CONTACT_BASE + self.index * PER_CLUSTER + len(self.contacts))
        first, last = name or self.person()
        created, modified = self.times(not_before)
        results = []
        if primary is not None:
            results.append({"id": primary, "type": "contact_to_company"})
            results.append({"id": primary, "type": "contact_to_company_unlabeled"})
        for cid in unlabeled:
            results.append({"id": cid, "type": "contact_to_company_unlabeled"})
        rec: Obj = {
            "id": kid,
            "properties": {
                "createdate": iso(created, self.rng.randrange(1000)),
                "email": email,
                "firstname": first.capitalize(),
                "hs_object_id": kid,
                "lastmodifieddate": iso(modified, self.rng.randrange(1000)),
                "lastname": last.capitalize(),
            },
            "createdAt": "",
            "updatedAt": "",
            "archived": archived,
        }
        rec["createdAt"] = rec["properties"]["createdate"]
        rec["updatedAt"] = rec["properties"]["lastmodifieddate"]
        if archived:
            rec["archivedAt"] = rec["updatedAt"]
        if results:
            rec["associations"] = {"companies": {"results": results}}
        self.contacts.append(rec)
        self.contact_facts.append(
            ContactFacts(email, archived, (primary,) if primary is not None else ())
        )

    def staff(self, cid: str, domain: str, not_before: int, n: int) -> None:
        """Ordinary people of a company: contacts at its domain, primary to it."""
        bare = domain.split("//")[-1].split("/")[0].split(":")[0].lower()
        bare = bare[4:] if bare.startswith("www.") else bare
        for _ in range(n):
            first, last = self.person()
            self.add_contact(
                f"{ascii_name(first)}.{ascii_name(last)}@{bare}",
                not_before=not_before,
                primary=cid,
                name=(first, last),
            )

    def add_deal(
        self,
        company: str | None,
        owner: str | None,
        amount: Decimal,
        *,
        closed: bool,
        won: bool = True,
        not_before: int,
    ) -> None:
        did = str(DEAL_BASE + self.index * PER_CLUSTER + len(self.deals))
        created, modified = self.times(not_before)
        stage = ("closedwon" if won else "closedlost") if closed else self.rng.choice(OPEN_STAGES)
        close = modified if closed else self.now + self.rng.randint(5, 90) * DAY
        rec: Obj = {
            "id": did,
            "properties": {
                "amount": hubspot_number(amount),
                "closedate": iso(close),
                "createdate": iso(created, self.rng.randrange(1000)),
                "dealname": f"{'Renewal' if closed else 'Expansion'} {did[-4:]}",
                "dealstage": stage,
                "hs_is_closed": "true" if closed else "false",
                "hs_lastmodifieddate": iso(modified, self.rng.randrange(1000)),
                "hs_object_id": did,
                "hubspot_owner_id": owner,
                "pipeline": "default",
            },
            "createdAt": "",
            "updatedAt": "",
            "archived": False,
        }
        rec["createdAt"] = rec["properties"]["createdate"]
        rec["updatedAt"] = rec["properties"]["hs_lastmodifieddate"]
        if company is not None:
            rec["associations"] = {
                "companies": {
                    "results": [
                        {"id": company, "type": "deal_to_company"},
                        {"id": company, "type": "deal_to_company_unlabeled"},
                    ]
                }
            }
            self.deal_facts.append(DealFacts(did, company, owner, amount, closed))
        self.deals.append(rec)

    def active_owner(self, avoid: str | None = None) -> str:
        choices = [o for o in self.owners.active if o != avoid]
        return self.rng.choice(choices)


# --- building clusters ----------------------------------------------------------------------


def combined_status(views: list[CustomerView]) -> str:
    statuses = {v.status for v in views}
    return next((s for s in STATUS_OPTIONS if s in statuses), "none")


class Values(TypedDict):
    mrr: str | None
    status: str | None
    lifecyclestage: str | None


def correct_values(views: list[CustomerView], rng: random.Random) -> Values:
    total = sum((v.mrr_reporting for v in views), Decimal(0))
    ever = any(v.ever_paid for v in views) or total > 0
    if total > 0:
        lifecycle = "customer"
    elif ever:
        lifecycle = rng.choice(("customer", "customer", "evangelist"))
    else:
        lifecycle = rng.choice(("opportunity", "salesqualifiedlead", "lead"))
    return {
        "mrr": hubspot_number(total) if total > 0 else ("0" if ever else None),
        "status": combined_status(views),
        "lifecyclestage": lifecycle,
    }


def build_customer_cluster(
    cl: Cluster, views: list[CustomerView], scenario: str, perturbations: list[str]
) -> None:
    """Give the cluster's customers their identity and build what HubSpot knows of them."""
    rng = cl.rng
    first = views[0].cs
    not_before = first.created - 30 * DAY
    name, stem = cl.company_name()
    for v in views:
        v.cs.name = name if len(views) == 1 else f"{name} ({v.cs.currency.upper()})"
    d = cl.domain(stem)
    owner = cl.active_owner()
    values = correct_values(views, rng)
    primary: str | None = None

    if first.deleted:
        scenario = "deleted_company"
    if scenario == "deleted_company":
        first.email = f"billing@{d}"
        last_mrr = next((h for h in reversed(views[0].history) if h > 0), Decimal("49"))
        cl.add_company(
            name,
            d,
            not_before=not_before,
            stripe_customer_id=first.id,
            lifecyclestage="customer",
            mrr=hubspot_number(last_mrr),
            status="active",
            owner=owner,
        )
        return
    if scenario in ("stripe_id", "archived_duplicate", "duplicate_id"):
        first.email = f"billing@{d}" if rng.random() < 0.7 else cl.free_email()
        primary = cl.add_company(
            name, d, not_before=not_before, stripe_customer_id=first.id, owner=owner, **values
        )
        if scenario == "archived_duplicate":
            cl.add_company(
                f"{name} (old)",
                cl.domain(stem, "-old"),
                not_before=not_before,
                stripe_customer_id=first.id,
                lifecyclestage="customer",
                mrr=values["mrr"],
                owner=cl.active_owner(),
                archived=True,
            )
        if scenario == "duplicate_id":
            cl.set_company(
                primary, lifecyclestage="opportunity", mrr=None, subscription_status=None
            )
            cl.add_company(
                f"{name} Ltd",
                cl.domain(stem, "-ltd"),
                not_before=not_before,
                stripe_customer_id=first.id,
                lifecyclestage="opportunity",
                owner=cl.active_owner(),
            )
            primary = None
    elif scenario == "metadata":
        first.email = f"billing@{d}"
        primary = cl.add_company(name, d, not_before=not_before, owner=owner, **values)
        first.metadata = {"hubspot_company_id": primary}
    elif scenario == "contact_email":
        p_first, p_last = cl.person()
        mail_dom = cl.domain(stem, "-mail")
        first.email = (
            f"{ascii_name(p_first).capitalize()}.{ascii_name(p_last).capitalize()}@{mail_dom}"
        )
        primary = cl.add_company(name, d, not_before=not_before, owner=owner, **values)
        cl.add_contact(
            first.email.lower(), not_before=not_before, primary=primary, name=(p_first, p_last)
        )
    elif scenario == "contact_unlabeled_then_domain":
        first.email = f"ops@{d}"
        primary = cl.add_company(name, d, not_before=not_before, owner=owner, **values)
        other = cl.add_company(
            f"{name} Partners",
            cl.domain(stem, "-partners"),
            not_before=not_before,
            lifecyclestage="lead",
            owner=cl.active_owner(),
        )
        cl.add_contact(first.email, not_before=not_before, unlabeled=(other,))
    elif scenario == "email_domain":
        first.email = f"accounts@{d}"
        shown = rng.choice(
            (f"https://www.{d}/", f"www.{d.upper()}", f"http://{d}:8080/about", d.capitalize())
        )
        primary = cl.add_company(name, shown, not_before=not_before, owner=owner, **values)
        if rng.random() < 0.5:
            decoy = cl.add_company(
                f"{name} Holdings",
                cl.domain(stem, "-holding"),
                not_before=not_before,
                lifecyclestage="lead",
                owner=cl.active_owner(),
            )
            cl.add_contact(first.email, not_before=not_before, primary=decoy, archived=True)
    elif scenario == "email_domain_idn":
        word = rng.choice(IDN_WORDS)
        unicode_domain = f"{word}-{cl.token}.de"
        first.email = f"info@{unicode_domain.encode('idna').decode('ascii')}"
        primary = cl.add_company(name, unicode_domain, not_before=not_before, owner=owner, **values)
    elif scenario == "free_mail_contact":
        first.email = cl.free_email()
        primary = cl.add_company(name, d, not_before=not_before, owner=owner, **values)
        cl.add_contact(first.email, not_before=not_before, primary=primary)
    elif scenario == "free_mail_unmatched":
        first.email = cl.free_email()
    elif scenario == "no_company":
        first.email = f"billing@{d}"
    elif scenario == "ambiguous_domain":
        first.email = f"finance@{d}"
        for label, shown in ((name, d), (f"{name} Group", f"www.{d}")):
            cid = cl.add_company(
                label,
                shown,
                not_before=not_before,
                lifecyclestage="opportunity",
                owner=cl.active_owner(),
            )
            cl.staff(cid, shown, not_before, 1)
    elif scenario == "ambiguous_contact":
        p_first, p_last = cl.person()
        mail_dom = cl.domain(stem, "-mail")
        local = f"{ascii_name(p_first)}.{ascii_name(p_last)}"
        first.email = f"{local}@{mail_dom}"
        for label, suffix, email in (
            (name, "", local.capitalize() + f"@{mail_dom}"),
            (f"{name} Europe", "-eu", f"{local.upper()}@{mail_dom}"),
        ):
            cid = cl.add_company(
                label,
                cl.domain(stem, suffix),
                not_before=not_before,
                lifecyclestage="opportunity",
                owner=cl.active_owner(),
            )
            cl.add_contact(email, not_before=not_before, primary=cid, name=(p_first, p_last))
    else:
        raise ValueError(f"unknown scenario {scenario}")

    for v in views[1:]:  # several customers, one company: the others by metadata
        v.cs.email = f"billing+{v.cs.currency}@{d}"
        if primary is not None:
            v.cs.metadata = {"hubspot_company_id": primary}

    if primary is None:
        return
    cl.staff(primary, d, not_before, rng.randint(1, 3))
    total = sum((v.mrr_reporting for v in views), Decimal(0))
    paying = total > 0
    has_conflict = "owner_conflict" in perturbations
    company_owner: str | None = owner
    for p in perturbations:
        company_owner = perturb(cl, primary, p, views, total, owner) or company_owner
        if p == "owner_missing":
            company_owner = None
    # deals: a closed-won deal, maybe an open one owned by the company owner
    if paying or views[0].ever_paid:
        cl.add_deal(
            primary,
            company_owner or owner,
            (total or Decimal(99)) * 12,
            closed=True,
            not_before=not_before,
        )
    if company_owner is not None and (rng.random() < 0.3 or has_conflict):
        cl.add_deal(
            primary,
            company_owner,
            Decimal(rng.randint(5, 40) * 100),
            closed=False,
            not_before=not_before,
        )
    if has_conflict and company_owner is not None:
        other = cl.active_owner(avoid=company_owner)
        cl.add_deal(
            primary, other, Decimal(rng.randint(50, 90) * 100), closed=False, not_before=not_before
        )
    if "closed_deal_other_owner" in perturbations:
        cl.add_deal(
            primary,
            cl.active_owner(avoid=company_owner),
            Decimal(12000),
            closed=True,
            won=False,
            not_before=not_before,
        )


def perturb(
    cl: Cluster, cid: str, p: str, views: list[CustomerView], total: Decimal, owner: str
) -> str | None:
    """Damage one property of a matched company; returns the new owner when it changes."""
    rng = cl.rng
    tolerance = max(Decimal(1), total * Decimal("0.005"))
    if p == "mrr_stale":
        stale = None
        for h in reversed(views[0].history[:-2]):
            if abs(h - total) > 3 * tolerance:
                stale = h
                break
        if stale is None:
            stale = total * Decimal("0.7") + 25 if total > 0 else Decimal(149)
        cl.set_company(cid, mrr=hubspot_number(stale))
    elif p == "mrr_empty":
        cl.set_company(cid, mrr=rng.choice(("", None)))
    elif p == "mrr_near_miss":
        cl.set_company(cid, mrr=hubspot_number(total + tolerance * Decimal("0.4")))
    elif p == "status_wrong":
        current = cl.company_prop(cid, "subscription_status")
        cl.set_company(
            cid, subscription_status=rng.choice([s for s in STATUS_OPTIONS if s != current])
        )
    elif p == "status_empty":
        cl.set_company(cid, subscription_status=None)
    elif p == "lifecycle_early":
        stage = rng.choice(EARLY_LIFECYCLE)
        cl.set_company(cid, lifecyclestage=stage or None)
    elif p == "lifecycle_late":
        cl.set_company(cid, lifecyclestage=rng.choice(("evangelist", "other")))
    elif p == "owner_missing":
        cl.set_company(cid, hubspot_owner_id=None)
    elif p in ("owner_archived", "owner_archived_not_paying"):
        new = rng.choice(cl.owners.archived)
        cl.set_company(cid, hubspot_owner_id=new)
        return new
    elif p == "owner_unknown":
        new = str(99_000_000 + rng.randint(1, 999_999))
        cl.set_company(cid, hubspot_owner_id=new)
        return new
    return None


def build_standalone_cluster(cl: Cluster, scenario: str) -> None:
    """Companies that no Stripe customer stands behind."""
    rng = cl.rng
    name, stem = cl.company_name()
    d = cl.domain(stem)
    owner = cl.active_owner()
    nb = cl.start
    if scenario == "orphan_customer":
        cid = cl.add_company(
            name,
            d,
            not_before=nb,
            lifecyclestage="customer",
            mrr=rng.choice((None, "0")),
            owner=owner,
        )
        cl.add_deal(cid, owner, Decimal(4800), closed=True, not_before=nb)
    elif scenario == "orphan_mrr":
        cid = cl.add_company(
            name, d, not_before=nb, lifecyclestage="opportunity", mrr="450", owner=owner
        )
    elif scenario in ("stripe_id_unknown", "stripe_id_unknown_orphan"):
        fake = cl.ids.make("cus_", 14)
        cl.fake_customer_ids.append(fake)
        orphan = scenario == "stripe_id_unknown_orphan"
        cid = cl.add_company(
            name,
            d,
            not_before=nb,
            stripe_customer_id=fake,
            lifecyclestage="customer" if orphan else "lead",
            mrr="99" if orphan else None,
            status="active" if orphan else None,
            owner=owner,
        )
    elif scenario in ("prospect", "prospect_conflict"):
        cid = cl.add_company(
            name,
            d,
            not_before=nb,
            lifecyclestage=rng.choice(("lead", "marketingqualifiedlead", "opportunity")),
            owner=owner,
        )
        cl.add_deal(cid, owner, Decimal(rng.randint(10, 60) * 100), closed=False, not_before=nb)
        if scenario == "prospect_conflict":
            cl.add_deal(
                cid, cl.active_owner(avoid=owner), Decimal(9900), closed=False, not_before=nb
            )
    elif scenario == "archived_orphan":
        cid = cl.add_company(
            name, d, not_before=nb, lifecyclestage="customer", mrr="120", owner=owner, archived=True
        )
    elif scenario == "free_mail_company":
        cid = cl.add_company(
            f"{name} (personal)", "gmail.com", not_before=nb, lifecyclestage="lead", owner=owner
        )
    else:
        raise ValueError(f"unknown standalone scenario {scenario}")
    if scenario != "free_mail_company":
        cl.staff(cid, d, nb, rng.randint(0, 2))
    if rng.random() < 0.3:  # someone with no company at all
        cl.add_contact(f"{stem}.{cl.token}@{rng.choice(('gmail.com', 'yahoo.com'))}", not_before=nb)
