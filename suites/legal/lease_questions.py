"""Questions on the invented leases: each names its agreement (by reference number, premises
address or a tenant's name, varied) and has a short answer taken from that agreement.

A fact is asked about only when its answer belongs to one agreement alone (no two agreements share
the same rent, bond, date, car space, ...), so a right answer means the right agreement was read,
and a fine-tune cannot carry a train answer over to a test question. Yes/no questions are the
exception: their answers repeat by nature; each carries the sentence of the lease that decides it.
Written by the trident project.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from lease_facts import Lease
from lease_text import car_label, day, money, outdoors

QUESTIONS_PER_LEASE = 8
YES_NO_PER_LEASE = (1, 2)  # drawn per lease: how many of its questions are yes/no
# How often a fact is asked relative to others (1 when not named): what a tenant or a property
# manager would look up in a lease first (money and dates) more often than its record-keeping details.
WEIGHTS = {"rent": 5, "bond": 5, "end": 4, "increase": 4, "start": 3, "holding": 3, "pet_name": 3, "car_space": 3,
           "increase_date": 3, "tenant": 2, "landlord": 2, "address": 2, "storage": 2, "phone": 2}


@dataclass(frozen=True)
class Question:
    fact: str
    phrasings: tuple[str, ...]
    """Ways to ask it, one drawn per question; `{N}` is where the agreement is named (`{Nc}`: at the
    start of the sentence)."""
    answers: tuple[str, ...]
    evidence: str | None = None


def normal(text: str) -> str:
    return " ".join(text.lower().replace(",", "").split())


# -- how a question names its agreement -------------------------------------------------------------

NAMINGS = {
    "reference": ("under agreement {ref}", "in tenancy agreement {ref}", "under the lease with reference {ref}",
                  "in agreement no. {ref}", "for lease {ref}", "under {ref}"),
    "address": ("for {addr}", "for the premises at {addr}", "in the lease of {addr}", "for the tenancy at {addr}",
                "for the home at {addr}"),
    "parties": ("under {tenant}'s lease", "in the lease signed by {tenant}", "for {tenant}'s tenancy",
                "in the agreement between {landlord} and {tenant}", "in {tenant}'s tenancy agreement"),
}


def naming(lease: Lease, mode: str, rng: random.Random) -> str:
    landlord = lease.landlord.replace(" Ltd", "")
    return rng.choice(NAMINGS[mode]).format(ref=lease.ref, addr=lease.premises.short, tenant=rng.choice(lease.tenants),
                                            landlord=landlord)


# -- what can be asked of one lease -----------------------------------------------------------------

def _facts(lease: Lease) -> list[Question]:
    """Every short-answer question the lease can answer (before the uniqueness rule)."""
    r, per = lease.rent, lease.rent.period
    out = [Question("rent", ("How much rent is payable {N}?", "What is the rent {N}, and how often is it paid?",
                             "{Nc}, how much rent does the tenant pay?", "What rent was agreed {N}?"),
                    (f"{money(r.amount)} per {per}", money(r.amount))),
           Question("bond", ("How much is the bond {N}?", "{Nc}, what amount was paid as bond?",
                             "What bond does the tenant pay {N}?", "How large a bond was taken {N}?"),
                    (money(lease.bond),)),
           Question("start", ("On what date does the tenancy start {N}?", "{Nc}, when does the tenancy begin?",
                              "What is the start date of the tenancy {N}?"), (day(lease.start),)),
           Question("signed", ("On what date was the agreement signed {N}?", "When did the parties sign {N}?"),
                    (day(lease.signed),)),
           Question("report", ("When was the condition report given to the tenant {N}?",
                               "{Nc}, on what date was the condition report handed over?"),
                    (day(lease.condition_report),)),
           Question("phone", ("What telephone number is given for urgent repairs {N}?",
                              "{Nc}, what number does the tenant ring for urgent repairs?"), (lease.phone,)),
           Question("meter", ("What is the number of the water meter {N}?",
                              "Which water meter serves the premises {N}?"),
                    (lease.water_meter,)),
           Question("address", ("What is the address of the premises let {N}?", "{Nc}, which property is let?"),
                    (lease.premises.short, lease.premises.full)),
           Question("ref", ("What is the reference number of the agreement {N}?",
                            "What reference does the agreement carry {N}?"), (lease.ref,))]
    if len(lease.tenants) == 1:
        out.append(Question("tenant", ("Who is the tenant {N}?", "{Nc}, who rents the premises?"), lease.tenants))
    else:
        out.append(Question("tenant", ("Name one of the tenants {N}.", "{Nc}, who is one of the tenants?"),
                            lease.tenants[:3]))
    if lease.landlord != "Alder Community Housing Ltd":
        out.append(Question("landlord", ("Who is the landlord {N}?", "{Nc}, who owns the premises as landlord?"),
                            (lease.landlord,)))
    if lease.end:
        out.append(Question("end", ("On what date does the fixed term end {N}?",
                                    "{Nc}, when does the fixed term expire?",
                                    "What is the last day of the fixed term {N}?"), (day(lease.end),)))
    out += _optional_facts(lease)
    return out


def _optional_facts(lease: Lease) -> list[Question]:
    out = []
    if lease.account:
        out.append(Question("account", ("Into which account number is the rent paid {N}?",
                                        "{Nc}, what bank account does the rent go to?"), (lease.account,)))
    if lease.payment_ref:
        out.append(Question("payment_ref", ("What payment reference does the tenant quote {N}?",
                                            "{Nc}, which reference goes with each rent payment?"),
                            (lease.payment_ref,)))
    if lease.car_space:
        out.append(Question("car_space", ("Which car space comes with the premises {N}?",
                                          "{Nc}, where may the tenant park?"),
                            (car_label(lease), lease.car_space)))
    if lease.storage:
        out.append(Question("storage", ("Which storage cage goes with the premises {N}?",
                                        "What storage cage number is allocated {N}?"),
                            (f"cage {lease.storage}", lease.storage)))
    if lease.pet:
        kind = lease.pet.kind
        out.append(Question("pet_name", (f"What is the name of the {kind} the landlord agreed to {{N}}?",
                                         f"{{Nc}}, what is the {kind} called?"), (lease.pet.name,)))
    if lease.holding_deposit:
        out.append(Question("holding", ("How much was the holding deposit {N}?",
                                        "{Nc}, what holding deposit was received?"), (money(lease.holding_deposit),)))
    if lease.increase:
        new, when = lease.increase
        out.append(Question("increase", ("{Nc}, what will the rent go up to?", "What will the new rent be {N}?"),
                            (f"{money(new)} per {lease.rent.period}", money(new))))
        out.append(Question("increase_date", ("From what date does the rent increase {N}?",
                                              "{Nc}, when does the higher rent start?"), (day(when),)))
    if lease.furnished:
        out.append(Question("inventory", ("How many items are on the furniture inventory {N}?",),
                            (str(lease.furnished),)))
    return out


def _yes_no(lease: Lease, evidence: dict[str, str]) -> list[Question]:
    """Yes/no questions whose deciding sentence the lease holds."""
    asks = {
        "smoking": ((f"Is smoking allowed {outdoors(lease)} {{N}}?",
                     f"{{Nc}}, may the tenant smoke {outdoors(lease)}?"),
                    lease.smoking_outside),
        "furnished": (("Are the premises let furnished {N}?", "{Nc}, does furniture come with the premises?"),
                      bool(lease.furnished)),
        "car": (("Does a car space come with the premises {N}?", "{Nc}, is the tenant given a car space?"),
                bool(lease.car_space)),
        "water": (("Does the tenant pay for the water used {N}?", "{Nc}, are water usage charges the tenant's?"),
                  lease.water_usage_by_tenant),
        "increase": (("Can the rent go up during the fixed term {N}?",
                      "{Nc}, does the rent rise before the term ends?"),
                     bool(lease.increase)),
        "pet": (("Has the landlord consented to a pet {N}?", "{Nc}, is there consent to keep an animal?"),
                bool(lease.pet)),
    }
    return [Question(f"yes_no:{fact}", phrasings, ("yes",) if yes else ("no",), evidence[fact])
            for fact, (phrasings, yes) in asks.items() if fact in evidence
            and not (fact == "increase" and lease.term_months is None)]


# -- choosing each lease's questions ----------------------------------------------------------------

MODES = ("reference", "address", "parties")
OWN_NAME = {"reference": {"ref"}, "address": {"address"}, "parties": {"tenant", "landlord"}}
"""Facts a naming gives away: a question naming the tenant does not ask who the tenant is."""


def candidates(lease: Lease, evidence: dict[str, str]) -> tuple[list[Question], list[Question]]:
    """(short-answer questions, yes/no questions) the lease can answer."""
    return _facts(lease), _yes_no(lease, evidence)


def shared_answers(facts: list[list[Question]]) -> set[tuple[str, str]]:
    """(fact, normalised answer) pairs that more than one agreement has: not asked."""
    counts = Counter((q.fact, normal(q.answers[0])) for per_lease in facts for q in per_lease)
    return {key for key, n in counts.items() if n > 1}


def choose(lease: Lease, facts: list[Question], yes_no: list[Question], shared: set[tuple[str, str]],
           rng: random.Random) -> list[tuple[Question, str]]:
    """QUESTIONS_PER_LEASE (question, naming mode) pairs: 1-2 yes/no, the rest short answers of
    facts no other agreement shares, the three ways of naming the agreement taking turns."""
    first = rng.randrange(len(MODES))
    modes = [MODES[(first + i) % len(MODES)] for i in range(QUESTIONS_PER_LEASE)]
    rng.shuffle(modes)
    picks = rng.sample(yes_no, min(rng.choice(YES_NO_PER_LEASE), len(yes_no)))
    pool = [q for q in facts if (q.fact, normal(q.answers[0])) not in shared]
    # a weighted draw without replacement (Efraimidis and Spirakis): order by u ** (1 / weight)
    pool.sort(key=lambda q: rng.random() ** (1 / WEIGHTS.get(q.fact, 1)), reverse=True)
    chosen = []
    for mode in modes[: QUESTIONS_PER_LEASE - len(picks)]:
        q = next(q for q in pool if q.fact not in OWN_NAME[mode])
        pool.remove(q)
        chosen.append((q, mode))
    return chosen + list(zip(picks, modes[len(chosen):]))


def wording(lease: Lease, q: Question, mode: str, rng: random.Random) -> str:
    """One way to ask `q`, naming the agreement in one of `mode`'s ways."""
    name = naming(lease, mode, rng)
    return rng.choice(q.phrasings).replace("{Nc}", name[:1].upper() + name[1:]).replace("{N}", name)


def record(lease: Lease, number: int, q: Question, mode: str, text: str) -> dict:
    """The question as one line of data/lease_qa.jsonl."""
    answers = list(dict.fromkeys(q.answers))  # a carport's label is its id: one answer, not two alike
    row = {"id": f"lq-{lease.id.removeprefix('lease-')}-{number}", "question": text, "answers": answers,
           "agreement": lease.id, "agreement_ref": lease.ref, "named_by": mode, "fact": q.fact}
    if q.evidence:
        row["evidence"] = q.evidence
    return row
