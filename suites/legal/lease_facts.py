"""The facts of the invented leases of the legal suite's `lease_qa` task: hand-written pools of
names, places and terms, and a seeded draw of one consistent set of facts per agreement.

Every lease is made under the Residential Tenancies Act 2019 as amended (it starts after 1 March
2024), so its sums keep to the Act: a bond of at most three weeks' rent (six weeks' where the
weekly rent is over K$1,150, two weeks' for a social housing provider, ss 13 and amd2022-2), rent
in advance of at most two weeks (four for a term of 30 months or more, s 20), a holding deposit of
at most four days' rent (s 12, amd2022-1), a rent increase during a fixed term only for a term of
two years or more with its amount stated (s 23), a consent fee for subletting of at most K$95
(s 38), a charge of at most K$40 for a key beyond the first two sets (s 40), and no pet bond
(s 37). Written by the trident project; no text or fact comes from a real lease.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import date, timedelta

# -- pools ------------------------------------------------------------------------------------------

TOWNS = (("Port Aldwin", "KE 4400"), ("Wexley", "KE 4512"), ("Stoney Creek", "KE 4631"), ("Marrowby", "KE 4218"),
         ("Hollin Bay", "KE 4705"), ("Carrick Downs", "KE 4390"), ("Ellery Heights", "KE 4477"),
         ("Fennmoor", "KE 4820"), ("Saltridge", "KE 4903"), ("Dunmere", "KE 4156"))
STREETS = ("Harrow Lane", "Corran Street", "Bellweather Road", "Quillon Avenue", "Tamsin Crescent", "Orchard Rise",
           "Kiln Street", "Mercer Parade", "Greyfriars Road", "Lantern Walk", "Pelham Terrace", "Osprey Close",
           "Wattle Grove", "Bramble Court", "Cinder Lane", "Hatherly Street", "Jubilee Drive", "Rookwood Avenue",
           "Sable Street", "Tidewater Esplanade", "Ventnor Road", "Wren Street", "Ashcombe Place", "Burnell Street",
           "Copperfield Road", "Drummond Way", "Fairlight Avenue", "Gannet Street", "Heron Parade", "Ivel Close",
           "Juniper Row", "Kestrel Hill Road", "Linnet Lane", "Moorcroft Street", "Netherby Road", "Oakapple Drive")
TENANTS = ("Marta Quill", "Joseph Ebo", "Priya Anand", "Tomasz Wierzbicki", "Aroha Tane", "Li Wen Zhou",
           "Samuel Okafor", "Ines Carvalho", "Declan Farrow", "Hana Kobayashi", "Rafael Mendes", "Chloe Ashdown",
           "Yusuf Demir", "Freya Lindqvist", "Kwame Mensah", "Sofia Marchetti", "Arjun Pillai", "Niamh Doherty",
           "Mateo Rojas", "Eliza Brandt", "Oluwaseun Adeyemi", "Grace Whitlock", "Dmitri Volkov", "Leilani Kahale",
           "Benedikt Sauer", "Amira Haddad", "Callum Reid", "Thi Lan Nguyen", "Jonah Pereira", "Matilda Crane",
           "Farid Rahimi", "Saoirse Kelleher", "Emeka Nwosu", "Astrid Holm", "Luca Bianchi", "Meera Iyer",
           "Patrick Oyelaran", "Zofia Nowak", "Henrik Dahl", "Ana Lucia Ortega", "Tevita Fifita", "Rosalind Kerr",
           "Kenji Morita", "Chidi Eze", "Isla Fairbairn", "Omar Siddiqui", "Beatriz Lobo", "Rhys Penhallow",
           "Yara Nassar", "Jack Tindall", "Mei Ling Tan", "Ciaran Boyle", "Noor Aziz", "Eamon Pryce",
           "Talia Rosenberg", "Viktor Halloran", "Esi Boateng", "Magnus Eriksen", "Paloma Reyes", "Tane Whaanga",
           "Ruth Abernethy", "Sunil Rao", "Carys Llewellyn", "Dario Conti", "Imogen Thorne", "Adebayo Ogun",
           "Lena Fischer", "Ravi Chandran", "Bronagh Quinn", "Felix Amankwah", "Wiremu Parata", "Greta Sundberg",
           "Hamid Karimi", "Lucinda Marsh", "Bao Tran", "Orla Madigan", "Stefan Petrov", "Nadia Benali",
           "Elliot Vance", "Keziah Mwangi", "Anouk Jansen", "Desmond Clarke", "Pania Ruatapu", "Ibrahim Sesay",
           "Harriet Lowe", "Jun Park", "Marisol Vega", "Aled Jenkins")
PRIVATE_LANDLORDS = (("Graham Petrakis", "41 Fairlight Avenue, Wexley KE 4512"),
                     ("Lucille and Arnold Bexley", "PO Box 2218, Marrowby KE 4218"),
                     ("Helena Strand", "9 Gannet Street, Hollin Bay KE 4705"),
                     ("Michael Tuivasa", "130 Heron Parade, Saltridge KE 4903"),
                     ("Ngaire Pollard", "2/8 Ivel Close, Dunmere KE 4156"),
                     ("Vivienne Osei", "77 Juniper Row, Fennmoor KE 4820"),
                     ("Rajesh and Kavita Menon", "15 Linnet Lane, Carrick Downs KE 4390"),
                     ("Hugh Dallimore", "PO Box 907, Port Aldwin KE 4400"),
                     ("Ottilie Grange", "6 Moorcroft Street, Ellery Heights KE 4477"),
                     ("Costas Andreou", "221 Netherby Road, Stoney Creek KE 4631"))
AGENT_LANDLORDS = ("Tollan Property Holdings Ltd", "Brackenridge Investments Ltd", "Larkspur Residential Trust",
                   "Desmond Achterberg", "Pauline Yeoh", "Frederick Nakamura-Lowe", "Wilhelmina Frost",
                   "Margot Leclerc", "Peter and Ana Vukovic", "Adeline Sforza", "Ewan McTavish", "Siobhan Marr",
                   "Meridian Homes (Kestrel) Ltd", "Bernard Oyelowo", "Clementine Dufresne")
CONTRACTORS = ("Dalby Plumbing & Electrical", "Kestrel Rapid Response Trades", "Quayside Maintenance",
               "M. Fortunato Plumbing", "Allhours Property Care", "Brightspark Electrical", "Northgate Trades Group")
GARDENERS = ("Greenleaf Garden Care", "Pruneworth Gardens", "Hollin Bay Mowing", "Fernside Landscapes")
PET_NAMES = ("Biscuit", "Rufus", "Mango", "Pepper", "Juniper", "Waffles", "Tilly", "Otis", "Clover", "Banjo",
             "Miso", "Pickles", "Hazel", "Ziggy", "Nutmeg", "Bramble", "Fennel", "Kipper", "Moss", "Saffron",
             "Tumble", "Pippin", "Quince", "Sprocket", "Marlowe", "Dumpling", "Echo", "Lupin", "Taro", "Wombat")
PETS = (("cat", "one desexed cat"), ("dog", "one {breed} of about {kg} kilograms"), ("rabbit", "one house rabbit"),
        ("budgerigar", "one budgerigar"))
DOG_BREEDS = ("beagle", "cavoodle", "kelpie cross", "whippet", "border terrier", "shih tzu")
MONTHS_SERVICED = ("March", "April", "September", "October")


# -- the facts of one agreement ---------------------------------------------------------------------

@dataclass(frozen=True)
class Premises:
    unit: str | None
    """'Unit 4' or 'Apartment 12', or None for a house."""
    number: str
    street: str
    town: str
    postcode: str
    kind: str
    """apartment | townhouse | house"""
    bedrooms: int

    @property
    def short(self) -> str:
        """How a question names the premises: the unit and street address with the town."""
        unit = f"{self.unit}, " if self.unit else ""
        return f"{unit}{self.number} {self.street}, {self.town}"

    @property
    def full(self) -> str:
        return f"{self.short} {self.postcode}"


@dataclass(frozen=True)
class Rent:
    amount: int
    """In Kestrel dollars, per `period`."""
    period: str
    """week | fortnight | calendar month"""

    @property
    def weekly(self) -> float:
        """s 2: monthly rent times 12 divided by 52."""
        return {"week": self.amount, "fortnight": self.amount / 2,
                "calendar month": self.amount * 12 / 52}[self.period]


@dataclass(frozen=True)
class Pet:
    kind: str
    description: str
    name: str


@dataclass(frozen=True)
class Lease:
    id: str
    ref: str
    style: str
    """The drafting house whose template the lease is written in (lease_text.STYLES)."""
    landlord: str
    landlord_address: str | None
    tenants: tuple[str, ...]
    premises: Premises
    term_months: int | None
    """None: a periodic tenancy from the start."""
    start: date
    signed: date
    rent: Rent
    due: str
    bond: int
    first_payment_weeks: int
    holding_deposit: int | None
    occupants: int
    contractor: str
    phone: str
    payment_ref: str | None
    """What the tenant quotes when paying an agent's trust account; None: paid otherwise."""
    account: str | None
    """A private landlord's own account; agents' trust accounts are in the style."""
    car_space: str | None
    storage: str | None
    pet: Pet | None
    gardener: tuple[str, int] | None
    """(gardener, weeks between visits) for a house with a garden."""
    water_usage_by_tenant: bool
    water_meter: str
    smoking_outside: bool
    furnished: int | None
    """Items in the inventory when let furnished, else None."""
    increase: tuple[int, date] | None
    """(new rent, from) for a fixed term of 2 years or more that states one."""
    consent_fee: int
    extra_key_fee: int
    keys: int
    aircon_month: str | None
    condition_report: date

    @property
    def end(self) -> date | None:
        if self.term_months is None:
            return None
        return add_months(self.start, self.term_months) - timedelta(days=1)

    @property
    def weekly_rent(self) -> float:
        return self.rent.weekly


def add_months(d: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    year, month = divmod(d.month - 1 + months, 12)
    year, month = d.year + year, month + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def bond_cap_weeks(weekly: float, social: bool) -> int:
    """s 13 as amended in 2022: 3 weeks, 6 above K$1,150 a week, 2 for social housing."""
    if social:
        return 2
    return 6 if weekly > 1150 else 3


# -- drawing ----------------------------------------------------------------------------------------

STYLE_COUNTS = (("harbourline", 11), ("fenwick", 10), ("private", 10), ("alder", 6), ("saltridge", 7))
BUILDINGS = 8  # apartment blocks: several leases share a street address and differ by unit
FIRST_START, LAST_START = date(2024, 4, 2), date(2026, 1, 30)
WEEKLY_RENT = {("apartment", 1): (385, 560), ("apartment", 2): (520, 760), ("apartment", 3): (700, 980),
               ("townhouse", 2): (610, 840), ("townhouse", 3): (700, 930), ("house", 3): (720, 1180),
               ("house", 4): (880, 1420)}


class Draw:
    """One seeded source of every choice, and the identifiers already handed out (kept unique)."""

    def __init__(self, seed: str):
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.tenants = list(TENANTS)
        self.rng.shuffle(self.tenants)
        streets = list(STREETS)
        self.rng.shuffle(streets)
        self.buildings = [(str(self.rng.randint(3, 240)), streets.pop(), self.rng.choice(TOWNS))
                          for _ in range(BUILDINGS)]
        self.house_streets = streets
        self.units: dict[int, set[int]] = {}

    def unique(self, make) -> str:
        """A value from `make()` not handed out before."""
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def premises(self, social: bool) -> Premises:
        rng = self.rng
        kind = rng.choice(("apartment", "apartment", "townhouse") if social else
                          ("apartment", "apartment", "apartment", "townhouse", "house", "house"))
        if kind == "apartment":
            b = rng.randrange(BUILDINGS)
            number, street, (town, postcode) = self.buildings[b]
            taken = self.units.setdefault(b, set())
            n = rng.choice([u for u in range(1, 40) if u not in taken])
            taken.add(n)
            return Premises(rng.choice(("Unit", "Apartment")) + f" {n}", number, street, town, postcode, kind,
                            rng.choice((1, 2, 2, 3)))
        town, postcode = rng.choice(TOWNS)
        address = self.unique(lambda: f"{rng.randint(2, 310)} {rng.choice(self.house_streets)}")
        number, street = address.split(" ", 1)
        bedrooms = rng.choice((2, 3)) if kind == "townhouse" else rng.choice((3, 3, 4))
        unit = f"Townhouse {rng.randint(1, 12)}" if kind == "townhouse" else None
        return Premises(unit, number, street, town, postcode, kind, bedrooms)

    def rent(self, style: str, premises: Premises) -> Rent:
        """An unusual whole-dollar rent per the style's usual rent period."""
        rng = self.rng
        if style == "alder":  # social housing: rent assessed on income, paid fortnightly
            return Rent(rng.randint(180, 390) * 2 + rng.choice((0, 1)), "fortnight")
        low, high = WEEKLY_RENT[(premises.kind, premises.bedrooms)]
        weekly = rng.randint(low, high)
        period = {"harbourline": "week", "fenwick": rng.choice(("week", "fortnight")), "private": "calendar month",
                  "saltridge": rng.choice(("week", "week", "calendar month"))}[style]
        amount = {"week": weekly, "fortnight": 2 * weekly + rng.choice((0, 1)),
                  "calendar month": round(weekly * 52 / 12)}[period]
        return Rent(amount, period)

    def bond(self, rent: Rent, social: bool) -> int:
        """At most the cap of s 13 (as amended); usually the whole cap, sometimes less."""
        cap = bond_cap_weeks(rent.weekly, social)
        weeks = self.rng.choice((cap, cap, cap, cap - 0.5, cap - 1)) if cap > 2 else cap
        return int(rent.weekly * weeks)

    def term(self, style: str) -> int | None:
        if style == "alder":
            return self.rng.choice((None, 12, 24))
        return self.rng.choice((None, 6, 9, 12, 12, 12, 12, 18, 24, 24, 30, 36))

    def dates(self) -> tuple[date, date, date]:
        """(start, signed, condition report given): signed 4-20 days before, report 1-6 days before."""
        start = FIRST_START + timedelta(days=self.rng.randint(0, (LAST_START - FIRST_START).days))
        return start, start - timedelta(days=self.rng.randint(4, 20)), start - timedelta(days=self.rng.randint(1, 6))

    def phone(self) -> str:
        return self.unique(lambda: f"04{self.rng.randint(10, 99)} {self.rng.randint(100, 999)} "
                                   f"{self.rng.randint(100, 999)}")

    def pet(self) -> Pet | None:
        rng = self.rng
        if rng.random() < 0.55:
            return None
        kind, description = rng.choice(PETS)
        description = description.format(breed=rng.choice(DOG_BREEDS), kg=rng.randint(6, 17))
        return Pet(kind, description, self.unique(lambda: rng.choice(PET_NAMES)))

    def lease(self, index: int, style: str) -> Lease:
        rng, social = self.rng, style == "alder"
        premises = self.premises(social)
        rent, term = self.rent(style, premises), self.term(style)
        start, signed, report = self.dates()
        landlord, address = self.landlord(style)
        weekly = rent.weekly
        long_term = term is not None and term >= 30
        house = premises.kind == "house"
        return Lease(
            id=f"lease-{index:02d}", ref=self.reference(style, start), style=style, landlord=landlord,
            landlord_address=address, tenants=tuple(self.tenants.pop() for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))),
            premises=premises, term_months=term, start=start, signed=signed, rent=rent, due=self.due(rent),
            bond=self.bond(rent, social),
            first_payment_weeks=0 if rent.period == "calendar month" else rng.choice((1, 2, 2) + ((4,) if long_term
                                                                                                 else ())),
            holding_deposit=int(weekly * 4 / 7) - rng.randint(0, 25) if rng.random() < 0.4 else None,
            occupants=rng.randint(premises.bedrooms + 1, 2 * premises.bedrooms + 1), contractor=rng.choice(CONTRACTORS),
            phone=self.phone(),
            payment_ref=(None if style in ("alder", "private") else
                         self.unique(lambda: f"{rng.choice('BDFHKLMPRTW')}{rng.randint(1000, 9999)}")),
            account=(self.unique(lambda: f"{rng.randint(10, 89)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}")
                     if style == "private" else None),
            car_space=self.car_space(premises), storage=(self.unique(lambda: str(rng.randint(1, 60)))
                                                         if premises.kind == "apartment" and rng.random() < 0.5
                                                         else None),
            pet=self.pet(), gardener=(rng.choice(GARDENERS), rng.choice((4, 6, 8, 12))) if house else None,
            water_usage_by_tenant=rng.random() < 0.7,
            water_meter=self.unique(lambda: f"W-{rng.randint(100000, 999999)}"),
            smoking_outside=rng.random() < 0.4, furnished=rng.randint(17, 41) if rng.random() < 0.2 else None,
            increase=None if social else self.increase(rent, term, start),
            consent_fee=rng.choice((45, 50, 60, 65, 75, 80, 95)),
            extra_key_fee=rng.choice((18, 22, 25, 30, 35, 40)), keys=rng.choice((2, 2, 3, 4)),
            aircon_month=rng.choice(MONTHS_SERVICED) if rng.random() < 0.5 else None, condition_report=report)

    def landlord(self, style: str) -> tuple[str, str | None]:
        if style == "alder":
            return "Alder Community Housing Ltd", None
        if style == "private":
            return self.rng.choice(PRIVATE_LANDLORDS)
        return self.rng.choice(AGENT_LANDLORDS), None

    def reference(self, style: str, start: date) -> str:
        rng, yy = self.rng, start.year % 100
        make = {"harbourline": lambda: f"HPM/{start.year}/{rng.randint(100, 9999):04d}",
                "fenwick": lambda: f"FOR-{yy}-{rng.randint(1000, 9999)}",
                "private": lambda: f"RTA-{rng.randint(10, 99)}{rng.choice('ABCDEFGHJK')}-{yy}",
                "alder": lambda: f"ACH-T-{rng.randint(10000, 49999)}",
                "saltridge": lambda: f"SLC {rng.randint(1000, 9999)}/{yy}"}[style]
        return self.unique(make)

    def due(self, rent: Rent) -> str:
        day = self.rng.choice(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"))
        if rent.period == "week":
            return f"in advance every {day}"
        if rent.period == "fortnight":
            return f"in advance every second {day}"
        n = self.rng.randint(1, 9)
        return f"on the {n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'} day of each month"

    def car_space(self, premises: Premises) -> str | None:
        rng = self.rng
        if premises.kind == "house" or rng.random() < 0.25:
            return None
        if premises.kind == "townhouse":
            return self.unique(lambda: f"carport {rng.randint(1, 24)}")
        return self.unique(lambda: f"{rng.choice(('B1', 'B2', 'B3', 'G'))}-{rng.randint(1, 48):02d}")

    def increase(self, rent: Rent, term: int | None, start: date) -> tuple[int, date] | None:
        """s 23(2): only in a fixed term of 2 years or more, with the amount stated."""
        if term is None or term < 24 or self.rng.random() < 0.3:
            return None
        step = {"week": (12, 38), "fortnight": (24, 70), "calendar month": (55, 160)}[rent.period]
        return rent.amount + self.rng.randint(*step), add_months(start, 12)


def draw_leases(seed: str = "trident-legal-leases") -> list[Lease]:
    """Every agreement of the task, in a fixed order: the same seed always gives the same facts."""
    draw, out = Draw(seed), []
    for style, count in STYLE_COUNTS:
        for _ in range(count):
            out.append(draw.lease(len(out) + 1, style))
    return out
