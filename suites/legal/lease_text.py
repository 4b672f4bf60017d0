"""The text of the invented leases: the Registrar's standard terms (the same words in every lease,
as a standard form has), and five drafting houses that write the particulars and the additional
terms each in their own way (a formal agency, a plain-English agency, private landlords, a
community housing provider, a terse agency).

`render` returns the text with, for each fact a yes/no question can ask, the sentence of the
lease that decides it (the question's `evidence`). Written by the trident project.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from lease_facts import Lease

WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
         10: "ten", 12: "twelve"}

STANDARD_TERMS = (
    "These terms are set by the Registrar of Rental Housing and apply to every residential tenancy agreement in "
    "the Province of Kestrel. (a) The bond is lodged with the Rental Bond Office within 11 business days after it "
    "is received, or within 5 business days if an agent receives it. (b) The tenant must pay the rent on time and "
    "keep the premises reasonably clean; the landlord must keep them in a reasonable state of repair and must begin "
    "urgent repairs within 36 hours after being told of them. (c) The landlord, or a person the landlord authorises "
    "in writing, may enter the premises after giving at least 64 hours' written notice, between 8 a.m. and 7 p.m. and "
    "never on a Sunday or public holiday; routine inspections may take place no more than once in any 13 weeks. "
    "(d) The end of a fixed term does not end the tenancy by itself: it continues as a periodic tenancy unless the "
    "tenant gives at least 21 days' notice, or the landlord at least 63 days' notice (100 days' notice for a fixed "
    "term longer than 2 years), before the term ends. (e) A tenant who ends a fixed term early pays the break fee set "
    "by section 44 of the Residential Tenancies Act 2019. (f) A term that takes away a right the Act gives the tenant "
    "has no effect.")


@dataclass(frozen=True)
class Rendered:
    title: str
    text: str
    evidence: dict[str, str]
    """Fact name (smoking, furnished, car, water, increase, pet) -> the sentence that decides it."""


def money(amount: float) -> str:
    return f"K${amount:,.0f}" if float(amount).is_integer() else f"K${amount:,.2f}"


def day(d: date) -> str:
    return f"{d.day} {d:%B} {d.year}"


def names(people: tuple[str, ...]) -> str:
    return people[0] if len(people) == 1 else ", ".join(people[:-1]) + " and " + people[-1]


def weeks(n: float) -> str:
    """'three weeks'', 'two and a half weeks'', 'one week's'."""
    whole, half = int(n), n != int(n)
    if whole == 1 and not half:
        return "one week's"
    return f"{WORDS[whole]}{' and a half' if half else ''} weeks'"


def bond_note(lease: Lease) -> str:
    """'(three weeks' rent)' when the bond is a whole or half number of weeks' rent, else ''."""
    for n in (2, 2.5, 3, 4, 5, 5.5, 6):
        if lease.bond == int(lease.weekly_rent * n):
            return f" ({weeks(n)} rent)"
    return ""


def outdoor(lease: Lease) -> str:
    return {"apartment": "balcony", "townhouse": "courtyard", "house": "back garden"}[lease.premises.kind]


def outdoors(lease: Lease) -> str:
    """The outdoor area with its preposition: 'on the balcony', 'in the courtyard'."""
    return ("on the " if lease.premises.kind == "apartment" else "in the ") + outdoor(lease)


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def description(lease: Lease) -> str:
    p = lease.premises
    let = "let furnished" if lease.furnished else "let unfurnished"
    return f"a {WORDS[p.bedrooms]}-bedroom {p.kind}, {let}"


def term(lease: Lease) -> str:
    if lease.term_months is None:
        kind = {"week": "weekly", "fortnight": "fortnightly", "calendar month": "monthly"}[lease.rent.period]
        return f"a periodic tenancy with {kind} rent periods, starting on {day(lease.start)}"
    return f"a fixed term of {lease.term_months} months, from {day(lease.start)} to {day(lease.end)}"


def first_payment(lease: Lease) -> str:
    """What the tenant pays before the tenancy starts (s 20: at most 2 weeks' rent, 4 for a long term)."""
    held = ""
    if lease.holding_deposit:  # s 12(4): applied in full to the first rent, never to the bond
        first = "that payment" if lease.first_payment_weeks else "the first payment of rent"
        held = (f" A holding deposit of {money(lease.holding_deposit)}, received on "
                f"{day(lease.signed - timedelta(days=3))}, has been applied in full to {first}.")
    if lease.first_payment_weeks == 0:
        return "No rent is payable before the tenancy starts." + held
    w = lease.first_payment_weeks
    return (f"{weeks(w).capitalize()} rent ({money(w * lease.weekly_rent)}) is payable on signing and pays the first "
            f"{'week' if w == 1 else WORDS[w] + ' weeks'} of the tenancy." + held)


def increase(lease: Lease) -> str:
    if lease.term_months is None:
        return ("The rent may be increased only as the Act allows: not within 15 months of the start or of the last "
                "increase, and after at least 95 days' written notice.")
    if lease.increase is None:
        return "The rent will not be increased during the fixed term."
    new, start = lease.increase
    return (f"The rent will increase to {money(new)} per {lease.rent.period} from {day(start)}, after at least 95 "
            "days' written notice of the increase.")


def evidence_of(text: str, sentences: dict[str, str]) -> dict[str, str]:
    """Keep only the deciding sentences that really are in the text (a style may leave one out)."""
    return {fact: s for fact, s in sentences.items() if s and s in text}


Style = Callable[[Lease], tuple[str, str, dict[str, str]]]
"""A drafting house: lease -> (title, text, deciding sentences)."""


# -- the additional terms, as each house words them -------------------------------------------------

def car_label(lease: Lease) -> str:
    car = lease.car_space
    return car if car and car.startswith("carport") else f"car space {car}"


def _harbourline_terms(lease: Lease) -> tuple[list[str], dict[str, str]]:
    pet, fee = lease.pet, money(lease.consent_fee)
    said = {
        "pet": (f"Pets. The landlord consents to the tenant keeping {pet.description} named {pet.name} at the "
                "premises, on condition that the carpets are professionally cleaned when the tenancy ends." if pet else
                "Pets. No animal may be kept at the premises unless the landlord consents in writing to a request "
                "made in the approved form; the landlord will respond within 21 days."),
        "car": (f"Parking. The tenant has the exclusive use of {car_label(lease)}." if lease.car_space else
                "Parking. The premises include a lock-up garage and driveway." if lease.premises.kind == "house" else
                "Parking. No car space is let with the premises."),
        "water": (f"Water. The tenant pays for water usage as measured by meter {lease.water_meter}; the landlord pays "
                  "the fixed service charges." if lease.water_usage_by_tenant else
                  f"Water. The landlord pays all water charges, including usage (meter {lease.water_meter})."),
        "smoking": (f"Smoking. Smoking is permitted {outdoors(lease)} only, and never inside the dwelling."
                    if lease.smoking_outside else
                    f"Smoking. Smoking is not permitted anywhere on the premises, including the {outdoor(lease)}."),
        "increase": "Rent increase. " + increase(lease),
    }
    terms = [said["pet"], said["car"]]
    if lease.storage:
        terms.append(f"Storage. Storage cage {lease.storage} in the basement is let with the premises.")
    terms += _garden(lease, "Garden. The tenant mows the lawns and weeds the garden beds. The landlord's contractor, "
                            "{g}, prunes the hedges and any tree over 2.5 metres every {w} weeks.",
                     "Courtyard. The tenant keeps the courtyard swept and its drains clear.")
    terms += [said["water"], said["smoking"], said["increase"],
              "Subletting. The tenant may not sublet the whole of the premises. Consent to sublet part of them will "
              f"not be unreasonably withheld; the landlord's charge for considering a request is {fee}. Short-stay "
              "letting through an online platform is subletting for this purpose.",
              f"Keys. The tenant receives {WORDS[lease.keys]} sets of keys; the first two sets are free and each "
              f"further key costs {money(lease.extra_key_fee)}."]
    if lease.aircon_month:
        terms.append(f"Air conditioning. The landlord has the reverse-cycle air conditioner serviced each "
                     f"{lease.aircon_month}.")
    if lease.furnished:
        terms.append(f"Inventory. The furniture listed in the attached inventory of {lease.furnished} items is let "
                     "with the premises.")
    return terms, said


def _garden(lease: Lease, house: str, townhouse: str) -> list[str]:
    if lease.gardener:
        g, w = lease.gardener
        return [house.format(g=g, w=w)]
    return [townhouse] if lease.premises.kind == "townhouse" else []


def _fenwick_terms(lease: Lease) -> tuple[list[str], dict[str, str]]:
    pet, period = lease.pet, lease.rent.period
    if lease.term_months is None:
        rise = ("Rent increases. We can only raise the rent as the Act allows: not in the first 15 months or within "
                "15 months of the last rise, and with at least 95 days' written notice.")
    elif lease.increase is None:
        rise = "Rent increases. Your rent stays the same for the whole fixed term."
    else:
        rise = (f"Rent increases. Your rent goes up to {money(lease.increase[0])} per {period} on "
                f"{day(lease.increase[1])}; we will still send you written notice at least 95 days before.")
    said = {
        "pet": (f"Pets. You may keep {pet.description} called {pet.name}. When you move out, please have the carpets "
                "professionally cleaned; we ask for no extra bond or rent for a pet." if pet else
                "Pets. You do not have consent to keep a pet yet. Ask us on the approved form and we will answer "
                "within 21 days."),
        "car": (f"Parking. {upper_first(car_label(lease))} is yours to use." if lease.car_space else
                "Parking. There is a garage at the side of the house." if lease.premises.kind == "house" else
                "Parking. The home comes without a car space; street parking nearby is unrestricted."),
        "water": (f"Water. You pay for the water you use (meter number {lease.water_meter}); the landlord pays the "
                  "service charges." if lease.water_usage_by_tenant else
                  f"Water. The landlord pays for all water, usage included (meter number {lease.water_meter})."),
        "smoking": (f"Smoking. You may smoke {outdoors(lease)}, but not indoors." if lease.smoking_outside else
                    f"Smoking. Please do not smoke anywhere at the home, the {outdoor(lease)} included."),
        "increase": rise,
    }
    terms = [said["car"]]
    if lease.storage:
        terms.append(f"Storage. You may also use storage cage {lease.storage}.")
    terms += [said["pet"], said["smoking"]]
    terms += _garden(lease, "Garden. You look after the lawn and the beds. {g} visits every {w} weeks to do the "
                            "hedges and the tall trees, at the landlord's cost.",
                     "Courtyard. Please keep the courtyard tidy and the drain grate clear of leaves.")
    terms += [said["water"], rise,
              "Subletting. Ask us in writing before you sublet a room or list the home on a short-stay website. We "
              f"reply within 17 days and charge {money(lease.consent_fee)} for handling the request. The whole home "
              "cannot be sublet.",
              f"Keys. We give you {WORDS[lease.keys]} sets of keys. If you need more, each extra key is "
              f"{money(lease.extra_key_fee)}."]
    if lease.aircon_month:
        terms.append(f"Air conditioning. The landlord pays for a service of the air conditioner every "
                     f"{lease.aircon_month}.")
    if lease.furnished:
        terms.append(f"Furniture. The home comes with the {lease.furnished} items listed on our inventory.")
    return terms, said


def _private_terms(lease: Lease) -> tuple[list[str], dict[str, str]]:
    pet = lease.pet
    said = {
        "pet": (f"(Pets) The landlord consents to {pet.description}, known as {pet.name}. The tenant will have the "
                "carpets professionally cleaned at the end of the tenancy." if pet else
                "(Pets) No pet is kept at the premises with the landlord's consent at the start of the tenancy."),
        "car": (f"(Parking) {upper_first(car_label(lease))} comes with the premises." if lease.car_space else
                "(Parking) The garage and the driveway may be used by the tenant." if lease.premises.kind == "house"
                else "(Parking) No off-street parking comes with the premises."),
        "water": (f"(Water) Water usage charges are payable by the tenant; service charges by the landlord. Meter "
                  f"number: {lease.water_meter}." if lease.water_usage_by_tenant else
                  f"(Water) The landlord will pay every water charge, usage included. Meter number: "
                  f"{lease.water_meter}."),
        "smoking": (f"(Smoking) The tenant and visitors may smoke only {outdoors(lease)}."
                    if lease.smoking_outside else f"(Smoking) No smoking inside or {outdoors(lease)}."),
        "increase": "(Rent increases) " + increase(lease),
    }
    terms = [said["increase"], said["water"], said["pet"], said["smoking"], said["car"]]
    if lease.storage:
        terms.append(f"(Storage) Storage cage {lease.storage} comes with the premises.")
    terms += _garden(lease, "(Garden) Ordinary garden care, mowing and weeding is the tenant's job. The landlord pays "
                            "{g} to prune hedges and trees over 2.5 metres tall every {w} weeks.",
                     "(Courtyard) The tenant keeps the courtyard clean.")
    terms += ["(Subletting) The landlord must consent in writing before any part of the premises is sublet or let "
              f"for short stays, and charges {money(lease.consent_fee)} to consider a request.",
              f"(Keys) {WORDS[lease.keys].capitalize()} sets of keys supplied; additional keys "
              f"{money(lease.extra_key_fee)} each."]
    if lease.aircon_month:
        terms.append(f"(Air conditioning) Serviced by the landlord every {lease.aircon_month}.")
    if lease.furnished:
        terms.append(f"(Furniture) Inventory of {lease.furnished} items attached.")
    return terms, said


def _alder_terms(lease: Lease) -> tuple[list[str], dict[str, str]]:
    pet = lease.pet
    said = {
        "pet": (f"Animals. Alder consents to the household keeping {pet.description} named {pet.name}. No pet bond or "
                "extra rent is charged." if pet else
                "Animals. The household has not asked for consent to keep an animal; a request may be made at any "
                "time on the approved form."),
        "car": (f"Parking. {upper_first(car_label(lease))} is allocated to the household." if lease.car_space else
                "Parking. No car space is allocated to the household."),
        "water": (f"Water. The household pays water usage charges (meter {lease.water_meter}); Alder pays the service "
                  "charges." if lease.water_usage_by_tenant else
                  f"Water. Alder pays all water charges (meter {lease.water_meter}), so no water is billed to the "
                  "household."),
        "smoking": (f"Smoking. Smoking is allowed {outdoors(lease)} but not inside." if lease.smoking_outside
                    else f"Smoking. The whole premises, including the {outdoor(lease)}, are smoke-free."),
    }
    terms = [said["pet"], said["car"]]
    if lease.storage:
        terms.append(f"Storage. Storage cage {lease.storage} is allocated to the household.")
    terms += _garden(lease, "", "Courtyard. The household keeps the courtyard tidy; Alder maintains the common "
                                "grounds.")
    terms += [said["water"], said["smoking"],
              "Subletting. Alder does not consent to subletting the whole premises. A request to sublet part of them "
              f"is considered within 17 days, for a charge of {money(lease.consent_fee)}.",
              f"Keys. {WORDS[lease.keys].capitalize()} key sets are issued free of charge; any extra key costs "
              f"{money(lease.extra_key_fee)}."]
    if lease.aircon_month:
        terms.append(f"Cooling. Alder services the air conditioner each {lease.aircon_month}.")
    if lease.furnished:
        terms.append(f"Furniture. The {lease.furnished} items on the inventory belong to Alder and stay at the "
                     "premises.")
    return terms, said


def _saltridge_terms(lease: Lease) -> tuple[list[str], dict[str, str]]:
    pet, where = lease.pet, outdoor(lease)
    if lease.term_months is None:
        rise = "Rent review: per the Act (not within 15 months; 95 days' written notice)."
    elif lease.increase is None:
        rise = "Rent review: none during the fixed term."
    else:
        rise = (f"Rent review: to {money(lease.increase[0])} per {lease.rent.period} from {day(lease.increase[1])}, "
                "95 days' written notice to be given.")
    said = {
        "pet": (f"Pets: consent given for {pet.description} ({pet.name}); carpets to be professionally cleaned on "
                "vacating." if pet else "Pets: none approved at commencement."),
        "car": (f"Parking: {car_label(lease)}." if lease.car_space else
                "Parking: garage and driveway." if lease.premises.kind == "house" else "Parking: nil."),
        "water": (f"Water: usage to tenant, service charges to owner; meter {lease.water_meter}."
                  if lease.water_usage_by_tenant else f"Water: all charges to owner; meter {lease.water_meter}."),
        "smoking": f"Smoking: {where} only." if lease.smoking_outside else f"Smoking: nowhere on the premises, {where} "
                                                                            "included.",
        "increase": rise,
    }
    terms = [rise, said["car"]]
    if lease.storage:
        terms.append(f"Storage: cage {lease.storage}.")
    terms += [said["pet"], said["water"], said["smoking"]]
    terms += _garden(lease, "Grounds: lawns and beds by tenant; hedges and trees over 2.5 m by {g} every {w} weeks at "
                            "owner's cost.", "Grounds: courtyard by tenant.")
    terms += [f"Subletting: written consent required, incl. short-stay platforms; fee {money(lease.consent_fee)}.",
              f"Keys: {lease.keys} sets issued; extra keys {money(lease.extra_key_fee)} each."]
    if lease.aircon_month:
        terms.append(f"Air conditioning: serviced each {lease.aircon_month} by owner.")
    if lease.furnished:
        terms.append(f"Inventory: {lease.furnished} items.")
    return terms, said


# -- whole agreements -------------------------------------------------------------------------------

def rent_line(lease: Lease) -> str:
    return f"{money(lease.rent.amount)} per {lease.rent.period}, payable {lease.due}"


def harbourline(lease: Lease) -> tuple[str, str, dict[str, str]]:
    terms, said = _harbourline_terms(lease)
    text = "\n".join([
        f"Agreement no. {lease.ref}. Standard form of the Registrar of Rental Housing, edition of 1 March 2024.",
        "PART 1. PARTICULARS",
        f"1.1 Landlord: {lease.landlord}, whose address for service is c/- Harbourline Property Management, 12 Quay "
        "Street, Port Aldwin KE 4400.",
        "1.2 Agent: Harbourline Property Management, property agent's licence PA-30418.",
        f"1.3 Tenant{'s' if len(lease.tenants) > 1 else ''}: {names(lease.tenants)}.",
        f"1.4 Premises: {lease.premises.full}, {description(lease)}.",
        f"1.5 Term: {term(lease)}.",
        f"1.6 Rent: {rent_line(lease)}, into Harbourline's trust account (Kestrel Mutual Bank, account 30-418-002) "
        f"quoting reference {lease.payment_ref}, or by RentLink card at no cost to the tenant.",
        f"1.7 Rent in advance: {first_payment(lease)}",
        f"1.8 Bond: {money(lease.bond)}{bond_note(lease)}.",
        f"1.9 Occupants: no more than {lease.occupants} people may ordinarily live at the premises.",
        f"1.10 Urgent repairs, at any hour: {lease.contractor}, telephone {lease.phone}.",
        "PART 2. STANDARD TERMS",
        STANDARD_TERMS,
        "PART 3. ADDITIONAL TERMS (each initialled by the tenant)",
        *(f"3.{i} {t}" for i, t in enumerate(terms, 1)),
        f"Signed for the landlord by Harbourline Property Management, and by the "
        f"tenant{'s' if len(lease.tenants) > 1 else ''}, on {day(lease.signed)}. Two "
        f"copies of the condition report were given to the tenant on {day(lease.condition_report)}."])
    return "Harbourline Property Management: Residential Tenancy Agreement", text, said


def fenwick(lease: Lease) -> tuple[str, str, dict[str, str]]:
    terms, said = _fenwick_terms(lease)
    step = {"week": "week to week", "fortnight": "fortnight to fortnight", "calendar month": "month to month"}
    how_long = (f"Your tenancy runs from {step[lease.rent.period]} (a periodic tenancy) from {day(lease.start)}."
                if lease.term_months is None else
                f"This is a fixed term of {lease.term_months} months. It starts on {day(lease.start)} and ends on "
                f"{day(lease.end)}.")
    text = "\n".join([
        "Fenwick & Oduya Realty, 88 Mercer Parade, Wexley KE 4512 (property agent's licence PA-41762).",
        f"Residential tenancy agreement on the Kestrel standard form (2024 edition). Our reference: {lease.ref}.",
        f"1. Who this agreement is between. The landlord is {lease.landlord}. We, Fenwick & Oduya Realty, manage the "
        f"home for the landlord. You, the tenant, are {names(lease.tenants)}.",
        f"2. Your home. {lease.premises.full}: {description(lease)}.",
        f"3. How long. {how_long}",
        f"4. Rent. You pay {rent_line(lease)}. Pay by bank transfer to our trust account (Wexley Co-operative Bank, "
        f"account 41-762-550) with the reference {lease.payment_ref}, or by card at our office, which costs you "
        "nothing.",
        f"5. Before you move in. {first_payment(lease)} The bond is {money(lease.bond)}{bond_note(lease)}.",
        f"6. Who can live here. No more than {lease.occupants} people may live in the home.",
        f"7. Urgent repairs. Call {lease.contractor} on {lease.phone}, day or night.",
        "8. The standard terms. " + STANDARD_TERMS,
        "9. Additional terms. You have initialled each of these.",
        *(f"9.{i} {t}" for i, t in enumerate(terms, 1)),
        f"Signed by you and by us for the landlord on {day(lease.signed)}. You received two copies of the condition "
        f"report on {day(lease.condition_report)}."])
    return "Fenwick & Oduya Realty: Residential tenancy agreement", text, said


def private(lease: Lease) -> tuple[str, str, dict[str, str]]:
    terms, said = _private_terms(lease)
    text = "\n".join([
        "Province of Kestrel. Residential Tenancies Act 2019. Standard form (1 March 2024).",
        f"Landlord's reference: {lease.ref}",
        f"Item 1. Landlord: {lease.landlord}, of {lease.landlord_address}. The landlord manages the premises "
        "personally; no agent acts for the landlord.",
        f"Item 2. Tenant{'s' if len(lease.tenants) > 1 else ''}: {names(lease.tenants)}.",
        f"Item 3. Premises: {lease.premises.full} ({description(lease)}).",
        f"Item 4. Term: {term(lease)}.",
        f"Item 5. Rent: {rent_line(lease)}, by transfer to the landlord's account {lease.account} at Kestrel Mutual "
        "Bank or by money order posted to the landlord's address. " + first_payment(lease),
        f"Item 6. Bond: {money(lease.bond)}{bond_note(lease)}.",
        f"Item 7. Occupants: at most {lease.occupants} persons.",
        f"Item 8. Urgent repairs: {lease.contractor}, {lease.phone} (24 hours).",
        "Standard terms. " + STANDARD_TERMS,
        "Schedule of additional terms (each initialled by the tenant)",
        *(f"({i}) {t}" for i, t in enumerate(terms, 1)),
        f"Executed by the landlord and the tenant on {day(lease.signed)}. Condition report given in duplicate on "
        f"{day(lease.condition_report)}."])
    return "Residential Tenancy Agreement", text, said


def alder(lease: Lease) -> tuple[str, str, dict[str, str]]:
    terms, said = _alder_terms(lease)
    text = "\n".join([
        "Alder Community Housing Ltd, registered community housing provider CHP-0091.",
        f"Residential Tenancy Agreement (social housing), standard form, edition of 1 March 2024. Tenancy number: "
        f"{lease.ref}.",
        f"Clause 1. Parties. Alder Community Housing Ltd (Alder, the landlord) and {names(lease.tenants)} (the "
        "household).",
        f"Clause 2. Premises. {lease.premises.full}, {description(lease)}.",
        f"Clause 3. Term. {term(lease)[0].upper() + term(lease)[1:]}.",
        f"Clause 4. Rent. {rent_line(lease)}, by direct debit or at any Kestrel Post counter, free of charge. The rent "
        "is 25 per cent of the household's assessable income and is reviewed each year against it, which section "
        "23(4) of the Act allows. " + first_payment(lease),
        f"Clause 5. Bond. {money(lease.bond)}{bond_note(lease)}, which may be paid in up to 3 instalments, the last "
        "due within 6 weeks after the tenancy starts.",
        f"Clause 6. Household. Up to {lease.occupants} people may live at the premises.",
        f"Clause 7. Repairs line. {lease.contractor}, {lease.phone}, at any hour.",
        "Clause 8. Standard terms. " + STANDARD_TERMS,
        "Clause 9. Additional terms, initialled by the household.",
        *(f"9.{i} {t}" for i, t in enumerate(terms, 1)),
        f"Signed for Alder and by the household on {day(lease.signed)}. Condition report (two copies) handed over on "
        f"{day(lease.condition_report)}."])
    return "Alder Community Housing: Residential Tenancy Agreement (social housing)", text, said


def saltridge(lease: Lease) -> tuple[str, str, dict[str, str]]:
    terms, said = _saltridge_terms(lease)
    ends = f" | Ends: {day(lease.end)}" if lease.end else " | Periodic"
    text = "\n".join([
        "SALTRIDGE LETTINGS CO. | 5 Tidewater Esplanade, Saltridge KE 4903 | licence PA-27305",
        f"TENANCY AGREEMENT {lease.ref} (Kestrel standard form, 2024 ed.)",
        f"Landlord: {lease.landlord} | Tenant(s): {names(lease.tenants)}",
        f"Premises: {lease.premises.full} | {description(lease)}",
        f"Term: {f'{lease.term_months} months' if lease.term_months else 'periodic'} | "
        f"Starts: {day(lease.start)}{ends}",
        f"Rent: {rent_line(lease)} | Bond: {money(lease.bond)}{bond_note(lease)} | Max. occupants: {lease.occupants}",
        f"Payment: trust account 27-305-118, ref. {lease.payment_ref}, or cash at our office (receipt given at once). "
        + first_payment(lease),
        f"Urgent repairs (24 h): {lease.contractor}, {lease.phone}",
        "STANDARD TERMS. " + STANDARD_TERMS,
        "SPECIAL CONDITIONS (initialled)",
        *(f"SC{i} {t}" for i, t in enumerate(terms, 1)),
        f"Signed {day(lease.signed)}. Condition report issued {day(lease.condition_report)}."])
    return "Saltridge Lettings Co.: Tenancy agreement", text, said


STYLES: dict[str, Style] = {"harbourline": harbourline, "fenwick": fenwick, "private": private, "alder": alder,
                            "saltridge": saltridge}


def render(lease: Lease) -> Rendered:
    """The lease's title and text, and the sentences that decide its yes/no facts."""
    title, text, said = STYLES[lease.style](lease)
    said = {**said, "furnished": description(lease)}
    if lease.premises.kind == "house":
        said.pop("car")  # a house's garage is not a car space a question could ask about
    return Rendered(title, text, evidence_of(text, said))
