"""Every Cypher statement selfmem sends to Neo4j (targets Neo4j 5.x and 2025.x; Cypher 5 syntax).

Writes are batched ``UNWIND $rows AS row MERGE ...`` statements keyed by the uniqueness
constraints below, so running an export twice changes nothing. Relationship types cannot be
parameters in Cypher, so each edge type has its own statement (built once, below, from
``ENDS``). ``BROWSER`` holds the read queries the docs show for Neo4j Browser. The tests lint all of
them with Neo4j's own parser (``@neo4j-cypher/language-support``).
"""

from __future__ import annotations

__all__ = ["CONSTRAINTS", "ENDS", "UPSERT", "EDGE", "DELETE_MEMORIES", "DELETE_TOPIC_EDGES", "DELETE_STALE_TOPICS",
           "BROWSER", "ALL_STATEMENTS"]

CONSTRAINTS = (
    "CREATE CONSTRAINT selfmem_memory_id IF NOT EXISTS FOR (n:Memory) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT selfmem_topic_id IF NOT EXISTS FOR (n:Topic) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT selfmem_session_name IF NOT EXISTS FOR (n:Session) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT selfmem_task_id IF NOT EXISTS FOR (n:Task) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT selfmem_entity_name IF NOT EXISTS FOR (n:Entity) REQUIRE n.name IS UNIQUE",
)

UPSERT = {
    "Memory": "UNWIND $rows AS row MERGE (n:Memory {id: row.id}) "
              "SET n.kind = row.kind, n.text = row.text, n.session = row.session, n.created_at = row.created_at, "
              "n.importance = row.importance, n.metadata = row.metadata",
    "Topic": "UNWIND $rows AS row MERGE (n:Topic {id: row.id}) "
             "SET n.label = row.label, n.level = row.level, n.keywords = row.keywords, n.provisional = row.provisional",
    "Session": "UNWIND $rows AS row MERGE (n:Session {name: row.name})",
    "Task": "UNWIND $rows AS row MERGE (n:Task {id: row.id})",
    "Entity": "UNWIND $rows AS row MERGE (n:Entity {name: row.name})",
}

# edge type -> (source label, source key property, target label, target key property)
ENDS = {
    "IN_TOPIC": ("Memory", "id", "Topic", "id"),
    "SUBTOPIC_OF": ("Topic", "id", "Topic", "id"),
    "RELATED_TO": ("Topic", "id", "Topic", "id"),
    "SIMILAR_TO": ("Memory", "id", "Memory", "id"),
    "IN_SESSION": ("Memory", "id", "Session", "name"),
    "FOLLOWS": ("Memory", "id", "Memory", "id"),
    "ABOUT": ("Memory", "id", "Task", "id"),
    "SOLVES": ("Memory", "id", "Task", "id"),
    "DERIVED_FROM": ("Memory", "id", "Memory", "id"),
    "MENTIONS": ("Memory", "id", "Entity", "name"),
}

# The target is MERGEd, not MATCHed: an export copies memories in id order, and a SIMILAR_TO edge made by
# a rebuild may point to a memory of a later batch, which then gets its properties when its batch comes.
EDGE = {
    rel: (f"UNWIND $rows AS row MATCH (a:{sl} {{{sk}: row.src}}) MERGE (b:{dl} {{{dk}: row.dst}}) "
          f"MERGE (a)-[r:{rel}]->(b) SET r.weight = row.weight, r.created_at = row.created_at, r += row.props")
    for rel, (sl, sk, dl, dk) in ENDS.items()
}

DELETE_MEMORIES = "UNWIND $ids AS id MATCH (n:Memory {id: id}) DETACH DELETE n"
DELETE_TOPIC_EDGES = "MATCH ()-[r:IN_TOPIC|SUBTOPIC_OF|RELATED_TO]->() DELETE r"
DELETE_STALE_TOPICS = "MATCH (t:Topic) WHERE NOT t.id IN $ids DETACH DELETE t"

BROWSER = {
    "a memory's topic path": (
        "MATCH p = (m:Memory {id: $id})-[:IN_TOPIC]->(:Topic)-[:SUBTOPIC_OF*0..]->(top:Topic) "
        "WHERE NOT (top)-[:SUBTOPIC_OF]->() RETURN [n IN nodes(p) | coalesce(n.label, n.text)] AS path"),
    "a task's solutions": (
        "MATCH (s:Memory)-[v:SOLVES]->(t:Task {id: $task}) "
        "OPTIONAL MATCH (s)-[:DERIVED_FROM]->(p:Memory) "
        "RETURN s.id AS solution, s.text AS text, v.verified_by AS verified_by, collect(p.id) AS derived_from"),
    "a topic's neighbourhood": (
        "MATCH (t:Topic {id: $topic}) OPTIONAL MATCH (t)-[r:RELATED_TO|SUBTOPIC_OF]-(o:Topic) "
        "OPTIONAL MATCH (m:Memory)-[:IN_TOPIC]->(t) "
        "RETURN t.label AS topic, collect(DISTINCT o.label) AS linked, count(DISTINCT m) AS members"),
    "the turns around a memory": (
        "MATCH (m:Memory {id: $id}) OPTIONAL MATCH (m)-[:FOLLOWS]->(before:Memory) "
        "OPTIONAL MATCH (after:Memory)-[:FOLLOWS]->(m) RETURN before.text, m.text, after.text"),
}

ALL_STATEMENTS = (*CONSTRAINTS, *UPSERT.values(), *EDGE.values(), DELETE_MEMORIES, DELETE_TOPIC_EDGES,
                  DELETE_STALE_TOPICS, *BROWSER.values())
