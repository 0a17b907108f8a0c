"""aiokafka (asyncio, non-flexible versions) against Spool: a producer and a group consumer."""
import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from common import BOOTSTRAP, check, ok, unique


async def main():
    topic = unique("aio")
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type="lz4", acks=1)
    await producer.start()
    try:
        for i in range(100):
            await producer.send(topic, key=f"k{i}".encode(), value=f"a{i}".encode())
        await producer.flush()
        meta = await producer.send_and_wait(topic, b"last")
        check(meta.offset == 100, f"the 101st record has offset 100 (got {meta.offset})")
    finally:
        await producer.stop()
    ok("aiokafka producer wrote 101 records (topic auto-created)")

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=unique("aio-group"),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        values = []
        async def read():
            async for message in consumer:
                values.append(message.value.decode())
                if len(values) == 101:
                    return
        await asyncio.wait_for(read(), timeout=90)
        check(values[:100] == [f"a{i}" for i in range(100)] and values[100] == "last", "read the records in order")
        await consumer.commit()
    finally:
        await consumer.stop()
    ok("aiokafka group consumer read all 101 records in order and committed")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
