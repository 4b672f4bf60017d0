"""The templated parts of the control set, drawn by a fixed seed: short reading passages with a
multiple-choice question answered by the passage alone, and small sums. Every fact lives in the
passage or the arithmetic, so no answer can go out of date. Written by the trident project."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

NAMES = ["Anna", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi", "Leo",
         "Maya", "Nils", "Olga", "Pavel", "Rosa", "Sami", "Tara", "Victor"]
OBJECTS = ["book", "cup", "key", "hat", "ball", "lamp", "phone", "scarf", "wallet", "bottle"]
PLACES = ["on the shelf", "in the sink", "under the bed", "in the drawer", "on the table", "in the cupboard",
          "by the door", "in the car"]
ROOMS = ["garden", "kitchen", "garage", "attic", "hallway", "cellar"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"]
THINGS = ["bicycle", "coat", "umbrella", "backpack", "car", "kite"]
FRUITS = ["apples", "pears", "oranges", "lemons", "plums", "peaches"]
JOBS = ["teacher", "baker", "nurse", "pilot", "farmer", "painter", "doctor", "driver"]
TOWNS = ["Millbrook", "Stonefield", "Ashby", "Redwater", "Elmhurst", "Northgate", "Kingsley", "Westbay"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ACTIVITIES = [("visits the dentist", "visit the dentist"), ("goes swimming", "go swimming"),
              ("plays chess", "play chess"), ("bakes bread", "bake bread"), ("walks in the park", "walk in the park"),
              ("goes to the library", "go to the library")]
"""(as the passage says it, as the question asks it)."""


@dataclass(frozen=True)
class Reading:
    """A passage, a question on it, the right answer and three wrong ones."""

    passage: str
    question: str
    answer: str
    wrong: tuple[str, str, str]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _others(rng: random.Random, pool: list[str], exclude: list[str], k: int) -> list[str]:
    return rng.sample([p for p in pool if p not in exclude], k)


def placement(rng: random.Random) -> Reading:
    who = rng.choice(NAMES)
    (o1, o2), (p1, p2), room = rng.sample(OBJECTS, 2), rng.sample(PLACES, 2), rng.choice(ROOMS)
    passage = f"{who} put the {o1} {p1} and the {o2} {p2}. Then {who} went to the {room}."
    extra = _others(rng, PLACES, [p1, p2], 1)
    return Reading(passage, f"Where did {who} put the {o2}?", p2, (p1, f"in the {room}", extra[0]))


def colour(rng: random.Random) -> Reading:
    a, b = rng.sample(NAMES, 2)
    c1, c2, c3 = rng.sample(COLOURS, 3)
    t1, t2 = rng.sample(THINGS, 2)
    passage = f"{a} has {_a(c1)} {t1} and {_a(c2)} {t2}. {b} has {_a(c3)} {t1}."
    return Reading(passage, f"What colour is {b}'s {t1}?", c3, (c1, c2, _others(rng, COLOURS, [c1, c2, c3], 1)[0]))


def count(rng: random.Random) -> Reading:
    a, b = rng.sample(NAMES, 2)
    f1, f2 = rng.sample(FRUITS, 2)
    n1, n2, n3 = rng.sample(range(2, 10), 3)
    passage = f"At the market, {a} bought {n1} {f1} and {n2} {f2}. {b} bought {n3} {f1}."
    spare = next(n for n in (n2 + 1, n2 + 2, n2 + 3) if n not in (n1, n2, n3))
    return Reading(passage, f"How many {f2} did {a} buy?", str(n2), (str(n1), str(n3), str(spare)))


def order(rng: random.Random) -> Reading:
    a, b, c, d = rng.sample(NAMES, 4)
    passage = f"{a} reached the station before {b}, and {b} reached it before {c}. {d} stayed at home."
    if rng.random() < 0.5:
        return Reading(passage, "Who reached the station first?", a, (b, c, d))
    return Reading(passage, "Who reached the station last?", c, (a, b, d))


def job(rng: random.Random) -> Reading:
    a, b = rng.sample(NAMES, 2)
    j1, j2 = rng.sample(JOBS, 2)
    t1, t2 = rng.sample(TOWNS, 2)
    passage = f"{a} works as {_a(j1)} in {t1}. {b} is {_a(j2)} who lives in {t2}."
    return Reading(passage, f"What is {b}'s job?", j2, (j1, *_others(rng, JOBS, [j1, j2], 2)))


def weekday(rng: random.Random) -> Reading:
    a, b = rng.sample(NAMES, 2)
    d1, d2 = rng.sample(DAYS, 2)
    (x1, _), (x2, ask) = rng.sample(ACTIVITIES, 2)
    passage = f"Every week, {a} {x1} on {d1}, and {b} {x2} on {d2}."
    return Reading(passage, f"On which day does {b} {ask}?", d2, (d1, *_others(rng, DAYS, [d1, d2], 2)))


TEMPLATES: list[Callable[[random.Random], Reading]] = [placement, colour, count, order, job, weekday]


def reading_items(n: int, seed: str = "trident-control-reading") -> list[Reading]:
    """`n` distinct passages with their questions, cycling through the templates."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        item = TEMPLATES[len(out) % len(TEMPLATES)](rng)
        if (item.passage, item.question) not in seen:
            seen.add((item.passage, item.question))
            out.append(item)
    return out


def sums(n: int, seed: str = "trident-control-sums") -> list[tuple[str, tuple[str, ...]]]:
    """`n` distinct small sums, differences and products, each answered by one whole number."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        kind = len(out) % 3
        if kind == 0:
            question, value = f"What is {a} plus {b}?", a + b
        elif kind == 1:
            a, b = max(a, b), min(a, b)
            question, value = f"What is {a} minus {b}?", a - b
        else:
            a = a % 10 + 2
            question, value = f"What is {a} times {b}?", a * b
        if question not in seen:
            seen.add(question)
            out.append((question, (str(value),)))
    return out
