"""Hand-written short-answer items of the control set: (question, accepted answers). Each answer is
one word or one number, scored by exact match after the project's normalisation (lower case, no
punctuation or articles), so 'Cold.' and 'cold' both match 'cold'. Written by the trident project."""

from __future__ import annotations

Short = tuple[str, tuple[str, ...]]

OPPOSITES: list[Short] = [
    ("What is the opposite of hot?", ("cold",)),
    ("What is the opposite of up?", ("down",)),
    ("What is the opposite of big?", ("small", "little")),
    ("What is the opposite of day?", ("night",)),
    ("What is the opposite of open?", ("closed", "shut")),
    ("What is the opposite of fast?", ("slow",)),
    ("What is the opposite of happy?", ("sad", "unhappy")),
    ("What is the opposite of full?", ("empty",)),
    ("What is the opposite of light, as in colour?", ("dark",)),
    ("What is the opposite of old, as in age?", ("young",)),
    ("What is the opposite of left?", ("right",)),
    ("What is the opposite of wet?", ("dry",)),
    ("What is the opposite of inside?", ("outside",)),
    ("What is the opposite of yes?", ("no",)),
    ("What is the opposite of first?", ("last",)),
]

PLURALS: list[Short] = [
    ("What is the plural of mouse?", ("mice",)),
    ("What is the plural of child?", ("children",)),
    ("What is the plural of foot?", ("feet",)),
    ("What is the plural of tooth?", ("teeth",)),
    ("What is the plural of man?", ("men",)),
    ("What is the plural of woman?", ("women",)),
    ("What is the plural of goose?", ("geese",)),
    ("What is the plural of box?", ("boxes",)),
    ("What is the plural of leaf?", ("leaves",)),
    ("What is the plural of knife?", ("knives",)),
]

PAST_TENSES: list[Short] = [
    ("What is the past tense of go?", ("went",)),
    ("What is the past tense of eat?", ("ate",)),
    ("What is the past tense of see?", ("saw",)),
    ("What is the past tense of run?", ("ran",)),
    ("What is the past tense of write?", ("wrote",)),
    ("What is the past tense of swim?", ("swam",)),
    ("What is the past tense of buy?", ("bought",)),
    ("What is the past tense of think?", ("thought",)),
    ("What is the past tense of sing?", ("sang",)),
    ("What is the past tense of drink?", ("drank",)),
]

COUNTS: list[Short] = [
    ("How many wheels does a bicycle have?", ("2", "two")),
    ("How many wheels does a tricycle have?", ("3", "three")),
    ("How many legs does a dog have?", ("4", "four")),
    ("How many legs does a bird have?", ("2", "two")),
    ("How many eyes does a person usually have?", ("2", "two")),
    ("How many fingers are there on one hand, counting the thumb?", ("5", "five")),
    ("How many days are there in the month of April?", ("30", "thirty")),
    ("How many letters are there in the English alphabet?", ("26", "twenty-six", "twenty six")),
    ("How many sides does a square have?", ("4", "four")),
    ("How many years are there in a century?", ("100", "hundred", "one hundred")),
]

COLOURS: list[Short] = [
    ("What colour is a ripe banana?", ("yellow",)),
    ("What colour is fresh grass?", ("green",)),
    ("What colour is snow?", ("white",)),
    ("What colour is the sky on a clear day?", ("blue",)),
    ("What colour is coal?", ("black",)),
    ("What colour is a ripe tomato?", ("red",)),
    ("What colour do you get when you mix black and white paint?", ("grey", "gray")),
    ("What colour is the inside of a lemon?", ("yellow",)),
]

LETTERS_AND_WORDS: list[Short] = [
    # not 'the first letter': exact match drops the article 'a', so an empty answer would match it
    ("What is the second letter of the English alphabet?", ("b",)),
    ("What is the last letter of the English alphabet?", ("z",)),
    ("Which day comes after Monday?", ("tuesday",)),
    ("Which day comes before Sunday?", ("saturday",)),
    ("Which month comes after January?", ("february",)),
    ("Which month comes before December?", ("november",)),
    ("What is the first month of the year?", ("january",)),
    ("What is the number after nine?", ("10", "ten")),
]

WRITTEN: dict[str, list[Short]] = {"opposites": OPPOSITES, "plurals": PLURALS, "past_tense": PAST_TENSES,
                                   "counts": COUNTS, "colours": COLOURS, "sequences": LETTERS_AND_WORDS}
"""Category -> its items."""
