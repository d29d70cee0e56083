"""A Channels consumer: each text message goes through the channel layer to every
connection in the room, reversed."""
from channels.generic.websocket import AsyncWebsocketConsumer

ROOM = "room"


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(ROOM, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(ROOM, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(ROOM, {"type": "room.message", "text": text_data[::-1]})

    async def room_message(self, event):
        await self.send(text_data=event["text"])
