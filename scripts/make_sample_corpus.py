"""Write src/acd/data/sample/corpus.jsonl: short English documents generated from templates written here.

The offline demo and tests need a corpus that ships with the package and is nobody's data set:
every sentence below is assembled from hand-written templates with a fixed seed, so the file is
reproducible (`python scripts/make_sample_corpus.py`) and free to redistribute.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "acd" / "data" / "sample" / "corpus.jsonl"
N_DOCUMENTS = 300
SEED = 0

SLOTS = {
    "city": ["Marlow", "Ashford", "Kingsbridge", "Port Ellen", "Oldcastle", "Bramley", "Northwick", "Easton Vale",
             "Redhill", "Larkspur", "Stonehaven", "Millbrook"],
    "river": ["the Avon", "the Tamar", "the Lune", "the Severn", "the Wye", "the Ouse", "the Calder"],
    "century": ["twelfth", "thirteenth", "fifteenth", "sixteenth", "eighteenth", "nineteenth"],
    "trade": ["wool", "salt", "timber", "cloth", "grain", "copper", "glass", "leather"],
    "building": ["market hall", "stone bridge", "parish church", "town library", "railway station", "harbour wall",
                 "corn exchange", "old mill"],
    "person": ["a local merchant", "the town council", "a group of volunteers", "the county surveyor",
               "a retired teacher", "two brothers from the valley", "the harbour master", "an engineer from the north"],
    "season": ["spring", "summer", "autumn", "winter"],
    "weather": ["heavy rain", "a long dry spell", "strong westerly winds", "an early frost", "thick coastal fog",
                "a mild and sunny week"],
    "animal": ["otters", "barn owls", "red kites", "badgers", "grey seals", "kingfishers", "hedgehogs", "curlews"],
    "habitat": ["the reed beds", "the old orchards", "the salt marsh", "the beech woods", "the chalk downs",
                "the river meadows"],
    "dish": ["a vegetable stew", "a lemon cake", "fresh bread", "a bean soup", "roast potatoes", "an apple crumble",
             "a mushroom pie"],
    "ingredient": ["butter", "flour", "onions", "garlic", "brown sugar", "thyme", "carrots", "cream", "black pepper"],
    "minutes": ["ten", "fifteen", "twenty", "thirty", "forty", "forty-five"],
    "tool": ["a spreadsheet", "a small script", "a paper notebook", "a shared calendar", "a simple checklist"],
    "team": ["the support team", "the night shift", "a small design team", "the new project group",
             "the finance office"],
    "problem": ["missed deadlines", "duplicated work", "long meetings", "slow replies to customers", "lost files"],
    "instrument": ["the violin", "the piano", "the guitar", "the cello", "the flute", "the drums"],
    "number": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "twelve"],
    "planet": ["Mars", "Jupiter", "Saturn", "Venus", "Mercury"],
    "sport": ["football", "cricket", "rowing", "cycling", "tennis", "hockey"],
    "adjective": ["quiet", "busy", "narrow", "steep", "cheerful", "crowded", "peaceful", "windy"],
}

TOPICS = {
    "town history": [
        "{city} grew up beside {river} in the {century} century.",
        "Its early wealth came from the {trade} trade, and merchants built fine houses near the water.",
        "The {building} was paid for by {person} and still stands today.",
        "In the {century} century a fire destroyed much of the {adjective} high street.",
        "The town was rebuilt in brick, and the new streets were wider than the old ones.",
        "Records from the period mention a weekly market and an annual fair in {season}.",
        "When the railway arrived, the {trade} trade moved away and the harbour grew {adjective}.",
        "Today {city} is known for its {adjective} lanes and its restored {building}.",
        "Visitors often walk along {river} to see the {building} from the far bank.",
        "Local historians have collected letters and maps that show how the town changed.",
    ],
    "nature": [
        "In {season}, {habitat} near {city} are home to {animal}.",
        "Volunteers counted {number} pairs of {animal} this year, more than in any year before.",
        "After {weather}, the paths through {habitat} become muddy and hard to follow.",
        "The {animal} feed at dawn and at dusk, when the paths are quiet.",
        "Careful management of {habitat} has helped many small birds return.",
        "Walkers are asked to keep dogs on a lead during the nesting season.",
        "A new hide gives a clear view across {habitat} without disturbing the {animal}.",
        "Scientists think that {weather} in {season} affects how many young survive.",
        "The reserve opens at eight in the morning and closes an hour before sunset.",
    ],
    "cooking": [
        "To make {dish}, start by warming {ingredient} in a heavy pan.",
        "Add {ingredient} and {ingredient} and stir for a few minutes.",
        "Cook the mixture gently for {minutes} minutes, stirring now and then.",
        "If it becomes too thick, add a little water or stock.",
        "Season with salt and {ingredient} before serving.",
        "This recipe for {dish} serves {number} people and keeps well for a day.",
        "Many cooks prefer to make {dish} the day before, because the flavour improves overnight.",
        "Serve it warm with a green salad or a slice of fresh bread.",
        "Leftovers can be frozen for up to a month.",
    ],
    "work": [
        "For months, {team} struggled with {problem}.",
        "A manager suggested tracking every task with {tool}.",
        "At first the change seemed slow, but after {number} weeks the results were clear.",
        "The number of {problem} fell by half, and people spent less time in meetings.",
        "Each morning the team spends {minutes} minutes planning the day.",
        "They review the list on Friday and move unfinished work to the next week.",
        "Other departments have asked {team} to share what they learned.",
        "The lesson, they say, is that a simple habit beats a complicated system.",
    ],
    "music": [
        "She started learning {instrument} when she was {number} years old.",
        "Practice was hard at first, and she played only {minutes} minutes a day.",
        "Her teacher asked her to play slowly and to listen to every note.",
        "By the age of {number}, she was playing with a small orchestra in {city}.",
        "The orchestra meets every {season} for a week of rehearsals and two concerts.",
        "Audiences in {city} now fill the {building} for the final concert.",
        "She says that learning {instrument} taught her patience more than anything else.",
        "Young players are welcome to join, whatever their level.",
    ],
    "astronomy": [
        "On clear nights in {season}, {planet} is easy to see without a telescope.",
        "It rises in the east a few hours after sunset and shines with a steady light.",
        "Through a small telescope you can see more detail than you might expect.",
        "{planet} moves slowly against the background stars from week to week.",
        "The astronomy club in {city} meets on the first Friday of each month.",
        "Members bring telescopes to the {adjective} field behind the {building}.",
        "Beginners are advised to learn a few bright stars before buying equipment.",
        "After {weather}, the sky is often especially clear.",
    ],
    "sport": [
        "The {city} {sport} club was founded by {person} more than a century ago.",
        "This {season} the first team won {number} matches in a row.",
        "Training takes place twice a week on the {adjective} ground beside {river}.",
        "The coach believes that fitness and patience matter more than talent.",
        "Several young players from the club have gone on to play for the county.",
        "After {weather}, the last home game of the season had to be moved.",
        "New members of any age are welcome to come to a training session.",
    ],
}


def fill(template: str, rng: random.Random) -> str:
    text = template
    while "{" in text:
        start = text.index("{")
        end = text.index("}", start)
        text = text[:start] + rng.choice(SLOTS[text[start + 1:end]]) + text[end + 1:]
    return text[0].upper() + text[1:]


def document(rng: random.Random) -> str:
    """One to four paragraphs on one topic, sentences in a random order, of varied length."""
    sentences = TOPICS[rng.choice(sorted(TOPICS))]
    paragraphs = []
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
        picked = rng.sample(sentences, rng.randint(2, len(sentences)))
        paragraphs.append(" ".join(fill(sentence, rng) for sentence in picked))
    return "\n".join(paragraphs)


def main() -> None:
    rng = random.Random(SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as handle:
        for index in range(N_DOCUMENTS):
            handle.write(json.dumps({"id": index, "text": document(rng)}) + "\n")
    print(f"{OUT}: {N_DOCUMENTS} documents, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
